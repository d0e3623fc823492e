"""Reading a request body with a hard size limit, before anything parses it."""

from __future__ import annotations

from fastapi import Request

from central.errors import refuse


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise refuse(400, "malformed", "Content-Length is not a number")
        if int(declared) > limit:
            raise refuse(413, "too_large", f"request body of {declared} bytes is over the limit of {limit}")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise refuse(413, "too_large", f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
