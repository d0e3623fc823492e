"""Real chronyd pairs for the time tests (and the end-to-end test): never touching the clock.

A *server* chronyd serves its own clock (``local stratum 3``) on a free loopback UDP port; a
*client* chronyd follows it.  Both run with ``-x`` (chronyd(8): never adjust the system clock),
``-u root`` and their own configuration, command socket, pid and drift files in a temporary
directory, so neither touches the machine's clock nor a system chronyd.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional

from tests.conftest import require_tool


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Chronyd:
    """One chronyd in ``workdir``; ``socket`` is its command socket (for ``chronyc -h``)."""

    def __init__(self, workdir: Path, config: str) -> None:
        self.chronyd = require_tool("chronyd")
        self.chronyc_path = require_tool("chronyc")
        workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(workdir, 0o700)  # chronyd refuses a command socket in a directory others can write
        self.workdir = workdir
        self.socket = str(workdir / "chronyd.sock")
        self.pidfile = workdir / "chronyd.pid"
        conf = workdir / "chrony.conf"
        conf.write_text(
            config
            + f"\nbindcmdaddress {self.socket}\ncmdport 0\npidfile {self.pidfile}\ndriftfile {workdir / 'drift'}\n"
        )
        self.proc: Optional[subprocess.Popen[bytes]] = subprocess.Popen(
            [self.chronyd, "-x", "-d", "-u", "root", "-f", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=open(workdir / "chronyd.log", "wb"),  # noqa: SIM115 - closed with the process
        )
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chronyd did not start: {(workdir / 'chronyd.log').read_text()[-500:]}")
            time.sleep(0.02)

    def chronyc(self, *args: str) -> str:
        done = subprocess.run(
            [self.chronyc_path, "-h", self.socket, "-n", *args], capture_output=True, text=True, timeout=5, check=False
        )
        return done.stdout + done.stderr

    def tracking_leap(self) -> str:
        return self.chronyc("-c", "tracking").strip().rpartition(",")[2]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None


def start_server(workdir: Path) -> tuple[Chronyd, int]:
    """A chronyd serving its own clock at stratum 3 on 127.0.0.1:<port>."""
    port = free_udp_port()
    server = Chronyd(workdir, f"local stratum 3\nport {port}\nbindaddress 127.0.0.1\nallow 127.0.0.1\n")
    return server, port


def start_client(workdir: Path, server_port: int, wait: bool = True) -> Chronyd:
    """A chronyd following the server on ``server_port``, polling every 1/16 s; waits for sync."""
    client = Chronyd(workdir, f"server 127.0.0.1 port {server_port} iburst minpoll -4 maxpoll -4\nport 0\n")
    deadline = time.monotonic() + 15
    try:
        while wait and "*" not in client.chronyc("-c", "sources").split(",")[1:2]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"chronyd client did not synchronise: {client.chronyc('sources')}")
            time.sleep(0.1)
    except BaseException:
        client.stop()
        raise
    return client
