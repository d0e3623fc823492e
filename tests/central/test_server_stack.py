"""The centre serves on uvloop and httptools where installed, and says which pair it runs on."""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path

import pytest
import requests

from central.api import server
from central.api.server import ServerStack, server_stack
from tests.centre_process import CentreProcess


def test_the_c_pair_when_installed() -> None:
    # the centre's extra installs both (pyproject.toml), so the test environment has them
    assert server_stack() == ServerStack("uvloop", "httptools")


@pytest.mark.parametrize("missing", ["uvloop", "httptools"])
def test_falls_back_to_the_pure_python_pair_when_one_is_missing(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == missing else real(name)

    monkeypatch.setattr(server.importlib.util, "find_spec", find_spec)
    stack = server_stack()
    assert stack.loop == ("asyncio" if missing == "uvloop" else "uvloop")
    assert stack.http == ("h11" if missing == "httptools" else "httptools")


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def test_a_served_centre_says_which_pair_it_runs_on_and_refuses_broken_http(tmp_path: Path) -> None:
    centre = CentreProcess(tmp_path / "centre")
    centre.cli("db", "upgrade")
    centre.start()
    try:
        log = (centre.state / "central.log").read_text()
        assert "serving with the uvloop event loop and the httptools HTTP parser" in log
        # what is not HTTP is refused by the parser, and the server goes on answering
        assert _raw(centre.port, b"GARBAGE\x00\x01 / HTTP/9.9\r\n\r\n").startswith(b"HTTP/1.1 400")
        too_long = b"POST /api/v1/heartbeat HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n"
        assert _raw(centre.port, too_long).startswith(b"HTTP/1.1 4")
        assert requests.get(centre.url + "/livez", timeout=5).status_code == 200
    finally:
        centre.stop()
