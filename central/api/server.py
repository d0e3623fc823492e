"""Which event loop and HTTP parser the centre's server runs on.

uvicorn takes uvloop and httptools when they are importable and falls back to asyncio's own
loop and the pure-Python h11 otherwise; both pairs serve the same requests.  The C pair carries
about 40 % more heartbeats per process (docs/benchmarks.md), so the choice is made here, once,
and logged at start-up: a sysadmin who sees ``h11`` in the log knows the centre runs slower
than it could, and why.
"""

from __future__ import annotations

import importlib.util
from typing import NamedTuple


class ServerStack(NamedTuple):
    loop: str
    http: str


def server_stack() -> ServerStack:
    """uvloop and httptools where installed, else asyncio and h11."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") is not None else "h11"
    return ServerStack(loop, http)
