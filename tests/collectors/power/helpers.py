"""Shared helpers for the power collector tests: contexts, free ports, an apcupsd NIS server."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest

from collectors.base import Context
from collectors.power import SPEC, read_servers
from collectors.settings import validate
from tests.conftest import require_tool

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


ON_LINE = (
    "ups.status: OL CHRG\nbattery.charge: 95\nbattery.runtime: 1800\nups.load: 21\nups.test.result: Done and passed\n"
)
ON_BATTERY = ON_LINE.replace("OL CHRG", "OB DISCHRG").replace("charge: 95", "charge: 60")


class Nut:
    def __init__(self, tmp: Path, port: int) -> None:
        self.tmp = tmp
        self.port = port
        self.procs: List[subprocess.Popen[bytes]] = []

    def set_flip(self, text: str) -> None:
        path = self.tmp / "flip.dev"
        before = path.stat().st_mtime if path.exists() else 0.0
        path.write_text(text)
        later = max(time.time(), before + 1.0)  # dummy-once re-reads on a new mtime
        os.utime(path, (later, later))


def _wait(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out after {seconds} s waiting for {what}")


def served_flags(server: Nut) -> List[str]:
    """The status words upsd serves now for the dummy UPS ``flip``."""
    return next((u.flags for u in read_servers.query_nut("127.0.0.1", server.port, 1.0).ups if u.name == "flip"), [])


def set_ups(server: Nut, text: str, flags: List[str]) -> float:
    """Change the dummy UPS and wait until upsd serves the new status; returns that moment."""
    server.set_flip(text)
    _wait(lambda: served_flags(server) == flags, 15, f"upsd to report {flags}")
    return time.monotonic()


@pytest.fixture(scope="module")
def nut(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nut]:
    upsd = require_tool("upsd")
    dummy = require_tool("dummy-ups")
    if upsd == "/usr/sbin/upsd" and os.path.exists("/lib/nut/upsd"):
        upsd = "/lib/nut/upsd"  # Debian's /usr/sbin/upsd is a wrapper that obeys /etc/nut/nut.conf
    tmp = tmp_path_factory.mktemp("nut")
    (tmp / "etc").mkdir()
    (tmp / "state").mkdir()
    os.chmod(tmp / "state", 0o777)  # private temp dir; drivers may drop to user nut
    shutil.copy(FIXTURES / "upsc_nut-2.7.4_cyberpower-pr1000lcdrt2utaa.dev", tmp / "pr1000.dev")
    server = Nut(tmp, free_port())
    server.set_flip(ON_LINE)
    (tmp / "etc" / "ups.conf").write_text(
        f'[pr1000]\n driver = dummy-ups\n port = {tmp}/pr1000.dev\n desc = "CyberPower PR1000"\n'
        f'[flip]\n driver = dummy-ups\n port = {tmp}/flip.dev\n desc = "Eaton in the rack"\n'
    )
    (tmp / "etc" / "upsd.conf").write_text(f"LISTEN 127.0.0.1 {server.port}\n")
    (tmp / "etc" / "upsd.users").write_text("[monuser]\n password = s3cret\n upsmon primary\n")
    os.chmod(tmp / "etc" / "upsd.users", 0o600)
    env = {**os.environ, "NUT_CONFPATH": str(tmp / "etc"), "NUT_STATEPATH": str(tmp / "state")}
    user = ["-u", "root"] if os.geteuid() == 0 else []
    log = open(tmp / "nut.log", "wb")  # noqa: SIM115 - open for the processes' lifetime
    try:
        for name in ("pr1000", "flip"):
            server.procs.append(subprocess.Popen([dummy, "-a", name, "-F", *user], env=env, stdout=log, stderr=log))
        server.procs.append(subprocess.Popen([upsd, "-F", *user], env=env, stdout=log, stderr=log))

        def ready() -> bool:
            result = read_servers.query_nut("127.0.0.1", server.port, 1.0)
            return len(result.ups) == 2 and all(u.flags for u in result.ups)

        _wait(ready, 15, "upsd and both dummy-ups drivers")
        yield server
    finally:
        for proc in server.procs:
            proc.terminate()
        for proc in server.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
