"""Slow and surplus connections: deadlines for a request's head and pauses in its body, a cap on open connections.

uvicorn (0.29 to 0.55 at least) times out only the idle wait between two requests
(``timeout_keep_alive``); a connection that sends its request head a byte a second, or stops
half-way through a body, is kept for ever, and every one holds a file descriptor, so a few hundred
of them leave none for genuine agents.  ``limit_concurrency`` answers 503 only once a request's
head is complete, so it cannot count the slow ones either.  Here, around uvicorn's own protocol
classes (httptools or h11), each connection gets:

- ``listen.head_timeout_s`` from a request's first byte (or the connection's start) for its line
  and headers; past it the connection is answered ``408`` and closed;
- ``listen.body_timeout_s`` for any pause while its body arrives (not counted while the centre
  itself has stopped reading); past it the connection is closed;
- a place among ``listen.max_connections``: one more is answered ``503`` and closed at once, so
  descriptors stay free (the unit's ``LimitNOFILE=`` is well above the cap).

Each kind of closing is logged once a minute at most, with how many it was.  A TLS handshake
that never ends is bounded by the event loop's own ``ssl_handshake_timeout`` (60 s).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Optional, Type

log = logging.getLogger("uvicorn.error")

_REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_BUSY = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nretry-after: 5\r\nconnection: close\r\n\r\n"


@dataclass(frozen=True)
class ConnectionLimits:
    head_timeout_s: float
    body_timeout_s: float
    max_connections: int


class Tally:
    """Counts one kind of closed connection and logs it at most once per ``every_s`` seconds."""

    def __init__(self, what: str, every_s: float = 60.0) -> None:
        self.what = what
        self.every_s = every_s
        self.count = 0
        self.last = -every_s

    def note(self, client: Any) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.last >= self.every_s:
            log.warning("closed %d connection(s) %s (latest from %s)", self.count, self.what, _address(client))
            self.count = 0
            self.last = now


def _address(client: Any) -> str:
    return f"{client[0]}:{client[1]}" if isinstance(client, tuple) and len(client) == 2 else "an unknown address"


class Guarded:
    """Mixed in before a uvicorn HTTP protocol class: the deadlines and cap above.

    ``_phase()`` says where the connection stands after a piece of data: ``head`` (a request's
    line and headers under way), ``body`` (its body under way) or ``idle`` (between requests, or
    the centre working on one)."""

    limits: ClassVar[ConnectionLimits]
    slow_heads: ClassVar[Tally]
    stalled_bodies: ClassVar[Tally]
    surplus: ClassVar[Tally]
    transport: Any
    connections: Any
    client: Any
    flow: Any
    loop: Any

    def connection_made(self, transport: Any) -> None:
        self.tillsyn_timer: Optional[Any] = None
        self.tillsyn_waiting = ""
        super().connection_made(transport)  # type: ignore[misc]
        if len(self.connections) > self.limits.max_connections:
            self.surplus.note(self.client)
            log.debug("%d connections open, over listen.max_connections", len(self.connections))
            transport.write(_BUSY)
            transport.close()
            return
        self._arm("head")

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        if self.transport.is_closing():
            self._disarm()
            return
        phase = self._phase()
        if phase == "head":
            if self.tillsyn_waiting != "head":  # the deadline runs from the head's first byte
                self._arm("head")
        elif phase == "body":
            self._arm("body")  # again with every piece: it bounds a pause, not the whole body
        else:
            self._disarm()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _phase(self) -> str:
        raise NotImplementedError

    def _arm(self, what: str) -> None:
        self._disarm()
        seconds = self.limits.head_timeout_s if what == "head" else self.limits.body_timeout_s
        self.tillsyn_waiting = what
        self.tillsyn_timer = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        timer = getattr(self, "tillsyn_timer", None)
        if timer is not None:
            timer.cancel()
        self.tillsyn_timer = None
        self.tillsyn_waiting = ""

    def _expired(self) -> None:
        what = self.tillsyn_waiting
        self.tillsyn_timer = None
        self.tillsyn_waiting = ""
        if self.transport.is_closing():
            return
        if what == "body" and self.flow.read_paused:  # the centre is not reading: not the client's pause
            self._arm("body")
            return
        if what == "head":
            self.slow_heads.note(self.client)
            self.transport.write(_REQUEST_TIMEOUT)
        else:
            self.stalled_bodies.note(self.client)
        self.transport.close()


def _tallies(cls: Type[Any], limits: ConnectionLimits) -> None:
    cls.limits = limits
    cls.slow_heads = Tally(f"whose request head took over {limits.head_timeout_s:g} s (listen.head_timeout_s)")
    cls.stalled_bodies = Tally(f"whose request body paused over {limits.body_timeout_s:g} s (listen.body_timeout_s)")
    cls.surplus = Tally(f"at once, over listen.max_connections ({limits.max_connections} open)")


def guarded_h11(limits: ConnectionLimits) -> Type[Any]:
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class GuardedH11(Guarded, H11Protocol):
        def _phase(self) -> str:
            state = self.conn.their_state
            if state is h11.SEND_BODY:
                return "body"
            if state is h11.IDLE and self.conn.trailing_data[0]:
                return "head"
            return "idle"

    _tallies(GuardedH11, limits)
    return GuardedH11


def guarded(base: Type[Any], limits: ConnectionLimits) -> Type[Any]:
    """``base`` (uvicorn's httptools protocol, or a subclass keeping ``tillsyn_phase``) with the deadlines and cap."""

    class GuardedHttpTools(Guarded, base):  # type: ignore[misc]
        def _phase(self) -> str:
            return str(self.tillsyn_phase)

    _tallies(GuardedHttpTools, limits)
    return GuardedHttpTools
