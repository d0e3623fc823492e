"""Shared helpers for the power collector tests: contexts, free ports, an apcupsd NIS server."""

from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path
from typing import Any, Dict, List

from collectors.base import Context
from collectors.power import SPEC
from collectors.settings import validate

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "power"


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def context(root: Path, **settings: Any) -> Context:
    """A context below ``root`` whose default servers point at ports where nothing listens."""
    merged: Dict[str, Any] = {
        "nut_servers": [{"host": "127.0.0.1", "port": free_port()}],
        "apcupsd_servers": [{"host": "127.0.0.1", "port": free_port()}],
        "server_timeout": 2.0,
    }
    merged.update(settings)
    return Context(root=root, settings=validate(merged, SPEC.settings, "collectors.power"))


class NisServer:
    """Answers each connection's ``status`` request with ``lines`` framed as apcupsd does."""

    def __init__(self, lines: List[bytes]) -> None:
        self.lines = lines
        self.requests: List[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = int(self.sock.getsockname()[1])
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                header = conn.recv(2)
                (length,) = struct.unpack(">H", header)
                self.requests.append(conn.recv(length))
                for line in self.lines:  # one record per line, in small writes
                    conn.sendall(struct.pack(">H", len(line)) + line)
                conn.sendall(b"\x00\x00")

    def close(self) -> None:
        self.sock.close()
