"""Slow clients against a real ``tillsyn-central serve``: heads sent a byte a second and stalled bodies
are closed at their deadlines, connections over the cap are answered 503 at once and logged, and
genuine heartbeats are served throughout.  Bounded: 30 + 5 slow connections, 50 over the cap, on
loopback, for about 10 seconds."""

from __future__ import annotations

import resource
import socket
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List

import httpx
import pytest

from tests.central.api.helpers import enrolled_node, serving
from tests.central.conftest import Node
from tests.centre_process import CentreProcess

HEAD_S = 2.0
BODY_S = 2.0
CAP = 40
SLOW_HEADS = 30
STALLED_BODIES = 5


@pytest.fixture
def served(tmp_path: Path) -> Iterator[CentreProcess]:
    centre = CentreProcess(tmp_path / "centre")
    centre.config.write_text(
        f"state_dir: {centre.state}\nlisten: {{host: 127.0.0.1, port: {centre.port}, head_timeout_s: {HEAD_S}, "
        f"body_timeout_s: {BODY_S}, max_connections: {CAP}}}\n"
    )
    with serving(centre):
        yield centre


def _closed(sock: socket.socket) -> bool:
    """Whether the server has closed this connection (anything it sent first is read and dropped)."""
    try:
        while True:
            got = sock.recv(4096)
            if not got:
                return True
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def test_slow_heads_and_stalled_bodies_are_closed_and_heartbeats_still_served(served: CentreProcess) -> None:
    node = enrolled_node(served)
    slow: List[socket.socket] = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(SLOW_HEADS)]
    stalled: List[socket.socket] = []
    for _ in range(STALLED_BODIES):
        sock = socket.create_connection(("127.0.0.1", served.port))
        sock.sendall(b"POST /api/v1/session HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        stalled.append(sock)
    started = time.monotonic()
    for sock in slow + stalled:
        sock.setblocking(False)
    head = b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100
    closed_at: Dict[int, float] = {}
    sent = [0] * SLOW_HEADS
    beats: List[int] = []
    while time.monotonic() - started < HEAD_S + 4 and len(closed_at) < len(slow) + len(stalled):
        for i, sock in enumerate(slow + stalled):
            if i in closed_at:
                continue
            if i < len(slow):
                try:  # a byte every quarter second: the whole head would take over 30 s
                    sock.send(head[sent[i] : sent[i] + 1])
                    sent[i] += 1
                except OSError:
                    pass
            if _closed(sock):
                closed_at[i] = time.monotonic() - started
        beats.append(node.heartbeat().status_code)
        time.sleep(0.25)
    held = max(closed_at.values(), default=0.0)
    print(f"slow connections closed after {sorted(round(t, 1) for t in closed_at.values())} s", file=sys.stderr)
    assert len(closed_at) == SLOW_HEADS + STALLED_BODIES, f"still open after {held:.1f} s: {len(closed_at)} closed"
    assert min(closed_at.values()) >= HEAD_S - 0.5, closed_at  # the deadline, not at once
    assert set(beats) == {200}, beats
    print(f"{len(beats)} heartbeats answered 200 while the slow connections were held", file=sys.stderr)
    for sock in slow + stalled:
        sock.close()
    log = (served.state / "central.log").read_text()
    assert "whose request head took over 2 s (listen.head_timeout_s)" in log
    assert "whose request body paused over 2 s (listen.body_timeout_s)" in log


def test_connections_over_the_cap_are_refused_at_once_and_logged(served: CentreProcess) -> None:
    node = enrolled_node(served)
    idle = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(CAP + 10)]
    try:
        answers = []
        for sock in idle[CAP - 5 :]:
            sock.settimeout(5)
            try:
                answers.append(sock.recv(200))
            except TimeoutError:
                answers.append(b"")
        busy = [a for a in answers if a.startswith(b"HTTP/1.1 503 Service Unavailable")]
        assert len(busy) >= 10, answers
        assert "over listen.max_connections (40 open)" in (served.state / "central.log").read_text()
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.5)
    assert node.heartbeat().status_code == 200  # places free again: genuine requests pass


def test_connections_past_the_descriptor_limit_leave_the_centre_serving(served: CentreProcess) -> None:
    # The case: with the descriptor limit at 48, slow connections took every descriptor and
    # genuine requests were reset. Here the limit leaves room for the cap and little more, and twice
    # the cap is opened: the ones over it are answered 503 at once (agents retry), none is reset, the
    # process never runs out of descriptors, and heartbeats are served once the slow ones are closed.
    assert served.proc is not None
    node = enrolled_node(served)
    assert node.heartbeat().status_code == 200
    in_use = len(list(Path(f"/proc/{served.proc.pid}/fd").iterdir()))
    limit = in_use + CAP + 16
    resource.prlimit(served.proc.pid, resource.RLIMIT_NOFILE, (limit, limit))
    held = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(2 * CAP)]
    try:
        for sock in held:
            sock.sendall(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # a head that never ends
        started = time.monotonic()
        beats: List[str] = []
        while time.monotonic() - started < HEAD_S + 3:
            beats.append(_heartbeat_anew(node, served.url))
            time.sleep(0.25)
        peak = len(list(Path(f"/proc/{served.proc.pid}/fd").iterdir()))
    finally:
        for sock in held:
            sock.close()
    print(f"descriptors: {in_use} in use, limit {limit}; heartbeats answered {beats}", file=sys.stderr)
    assert set(beats) <= {"200", "503"} and beats[-1] == "200", beats
    assert peak < limit
    log = (served.state / "central.log").read_text()
    assert "over listen.max_connections (40 open)" in log
    assert "Too many open files" not in log and "Traceback" not in log


def _heartbeat_anew(node: Node, url: str) -> str:
    """A heartbeat on a new connection, as an agent after its idle one was closed: the status or the failure."""
    with httpx.Client(base_url=url, timeout=5) as client:
        node.client = client  # type: ignore[assignment]
        try:
            return str(node.heartbeat().status_code)
        except httpx.TransportError as err:
            return type(err).__name__
