"""Centres that misbehave, on real loopback sockets, for the agent's tests.

``FakeCentre`` answers HTTP as a test scripts it (a proxy's 502 page, a list where an
object belongs, wrong types); ``HungCentre`` accepts connections and never answers,
like a centre whose process is stopped or a network that drops replies.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Tuple

AGENT_ID = "agent-fake-0001"


class FakeCentre:
    """An HTTP server answering each path with a scripted (status, JSON value); every request kept."""

    def __init__(self) -> None:
        self.answers: Dict[str, Tuple[int, Any]] = {
            "/api/v1/enrol": (200, {"agent_id": AGENT_ID, "status": "new", "heartbeat_interval_s": 60}),
        }
        self.requests: List[Tuple[str, bytes]] = []
        self.lock = threading.Lock()
        centre = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with centre.lock:
                    centre.requests.append((self.path, body))
                    status, value = centre.answers.get(self.path, (404, {"error": "not_found"}))
                data = json.dumps(value).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def token(self) -> str:
        return "tse_fake"

    def answer(self, path: str, status: int, value: Any) -> None:
        with self.lock:
            self.answers[path] = (status, value)

    def count(self, path: str) -> int:
        with self.lock:
            return sum(p == path for p, _ in self.requests)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class HungCentre:
    """A TCP socket that accepts every connection and never reads or answers a byte."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: List[socket.socket] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.held.append(conn)

    def accepted(self) -> int:
        with self.lock:
            return len(self.held)

    def stop(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (close alone does not)
        self.sock.close()
        with self.lock:
            for conn in self.held:
                conn.close()


def point_at(state: Path, url: str) -> None:
    """Make an enrolled agent talk to ``url`` from now on (as if the centre had moved there)."""
    path = state / "enrolment.json"
    enrolment = json.loads(path.read_text())
    enrolment["server"] = url
    path.write_text(json.dumps(enrolment))
