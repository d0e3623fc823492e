"""Which event loop and HTTP parser the centre's server runs on, and the limit on a request's head.

uvicorn takes uvloop and httptools when they are importable and falls back to asyncio's own
loop and the pure-Python h11 otherwise; both pairs serve the same requests.  The C pair carries
about 40 % more heartbeats per process (docs/benchmarks.md), so the choice is made here, once,
and logged at start-up: a sysadmin who sees ``h11`` in the log knows the centre runs slower
than it could, and why.

h11 refuses a request line and headers over 16 KB; httptools has no such limit, buffers what it
is sent and joins a long header from its pieces, so one connection sending a header that never
ends would cost memory without bound and CPU growing with the square of its length, on the one
event-loop thread, before any signature is looked at.  :class:`BoundedHttpTools` closes such a
connection with ``431`` once a request's head passes :data:`MAX_HEAD_BYTES`.
"""

from __future__ import annotations

import importlib.util
from typing import Any, NamedTuple, Type

from central.api.connections import ConnectionLimits, guarded, guarded_h11

MAX_HEAD_BYTES = 64 * 1024
"""A request line and headers larger than this are refused (an agent's are under 1 KB)."""
_TOO_LARGE_TEXT = f"request line and headers over {MAX_HEAD_BYTES // 1024} KB\n".encode()
TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\n"
    b"content-length: %d\r\n"
    b"\r\n" % len(_TOO_LARGE_TEXT)
) + _TOO_LARGE_TEXT


class ServerStack(NamedTuple):
    loop: str
    http: str


def server_stack() -> ServerStack:
    """uvloop and httptools where installed, else asyncio and h11."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") is not None else "h11"
    return ServerStack(loop, http)


def http_protocol(stack: ServerStack, limits: ConnectionLimits) -> Type[Any]:
    """What to give uvicorn as ``http``: httptools with the head limit, or h11 (which has its own),
    with the deadlines and connection cap of central/api/connections.py."""
    if stack.http != "httptools":
        return guarded_h11(limits)
    return guarded(bounded_httptools(), limits)


def bounded_httptools() -> Type[Any]:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class BoundedHttpTools(HttpToolsProtocol):
        """uvicorn's httptools protocol, closing a connection whose request head passes MAX_HEAD_BYTES.

        A piece of data is counted when, after the parser took it, a request's head is still not
        complete and no request ended in it; so a body is never counted, and the parser is never
        fed more than the limit plus one piece (at most 256 KB) of an unfinished head."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.tillsyn_in_head = True
            self.tillsyn_ended = False
            self.tillsyn_head_bytes = 0
            self.tillsyn_phase = "idle"  # "head", "body" or "idle", for central/api/connections.py

        def data_received(self, data: bytes) -> None:
            if data and self.tillsyn_phase == "idle":
                self.tillsyn_phase = "head"
            super().data_received(data)
            if self.tillsyn_ended:  # a head or a request ended in this piece: the count starts again
                self.tillsyn_ended = False
                self.tillsyn_head_bytes = 0
                return
            if not self.tillsyn_in_head or self.transport.is_closing():
                return
            self.tillsyn_head_bytes += len(data)
            if self.tillsyn_head_bytes > MAX_HEAD_BYTES:
                self.logger.warning("request head over %d bytes: connection closed", MAX_HEAD_BYTES)
                self.transport.write(TOO_LARGE)
                self.transport.close()

        def on_headers_complete(self) -> None:
            self.tillsyn_in_head = False
            self.tillsyn_phase = "body"
            self.tillsyn_ended = True
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self.tillsyn_phase = "idle"
            self.tillsyn_in_head = True
            self.tillsyn_ended = True

    return BoundedHttpTools
