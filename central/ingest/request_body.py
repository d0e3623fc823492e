"""Reading a request body with a hard size limit, before anything parses it."""

from __future__ import annotations

from typing import AsyncIterator, Optional

from fastapi import Request

from central.request_refused import refuse


async def read_body(declared: Optional[str], chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The body from its chunks; refused (413) as soon as it is, or says it will be, over ``limit``."""
    if declared is not None:
        if not declared.isdigit():
            raise refuse(400, "malformed", "Content-Length is not a number")
        if int(declared) > limit:
            raise refuse(413, "too_large", f"request body of {declared} bytes is over the limit of {limit}")
    parts = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise refuse(413, "too_large", f"request body is over the limit of {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


async def read_limited(request: Request, limit: int) -> bytes:
    return await read_body(request.headers.get("content-length"), request.stream(), limit)
