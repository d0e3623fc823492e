"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for the load generator.

The load client must not be the bottleneck on a 2-core machine that also runs the
centre, and a general client (httpx) spends several times the CPU of the request
itself.  Requests here are pre-built byte strings; a response is read as its
status and its ``Content-Length`` body, nothing more (uvicorn always sends one).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Dict, Optional, Tuple


class HTTPProtocolError(Exception):
    """The server's answer is not the simple HTTP/1.1 this client understands."""


@dataclass(frozen=True)
class Request:
    """One pre-built request: the bytes to write, and what it carries (for checking afterwards)."""

    data: bytes
    agent: int = -1
    report_id: str = ""


def build(method: str, path: str, body: bytes = b"", headers: Optional[Dict[str, str]] = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    if body:
        lines.append("Content-Type: application/json")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


class Connection:
    """One kept-alive connection; one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: Optional[asyncio.StreamReader] = None
        self.writer: Optional[asyncio.StreamWriter] = None

    async def _open(self) -> Tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        return self.reader, self.writer

    async def send(self, data: bytes) -> Tuple[int, bytes]:
        """Write one request and read its answer: (status, body).

        A kept-alive connection the server closed while idle (uvicorn after 5 s) fails
        before a byte of the answer arrives; the server never read the request, so it is
        sent once more on a new connection, as HTTP clients do (RFC 9112, section 9.3.1).
        """
        reused = self.reader is not None
        reader, writer = await self._open()
        writer.write(data)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionResetError) as err:
            partial = getattr(err, "partial", b"")
            if not reused or partial:
                raise
            self.close()
            reader, writer = await self._open()
            writer.write(data)
            head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        try:
            status = int(lines[0].split(b" ", 2)[1])
        except (IndexError, ValueError) as err:
            raise HTTPProtocolError(f"bad status line {lines[0]!r}") from err
        length = -1
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            lowered = name.strip().lower()
            if lowered == b"content-length":
                length = int(value)
            elif lowered == b"connection" and value.strip().lower() == b"close":
                close = True
        if length < 0:
            raise HTTPProtocolError("answer without Content-Length")
        body = await reader.readexactly(length)
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None
