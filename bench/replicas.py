"""Several ``tillsyn-central serve`` processes on one PostgreSQL behind HAProxy, on loopback.

``replicas(db_url, count, data_dir)`` starts ``count`` centre processes on random loopback ports,
each with its own ``central.yaml`` and log in ``data_dir/replica-N/``, and Debian's HAProxy
(``/usr/sbin/haproxy``) in front of them, health-checking each on ``/healthz``; it yields the
balancer's base URL and stops everything on exit.  :func:`running` yields the :class:`Replicas`
themselves, for a caller that kills one (``kill(i)``: SIGKILL, as in a crash) or reads their logs.

SQLite is refused: its one write lock belongs to one process (docs/operations.md, Replicas).
The operators' configuration is ``packaging/haproxy/tillsyn-central.cfg``; this one differs in
listening on a random loopback port without TLS and in checking every second.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional

ROOT = Path(__file__).resolve().parents[1]
HAPROXY = "/usr/sbin/haproxy"
START_S = 60.0
"""How long the replicas and the balancer may take to come up (the first one migrates the schema)."""


class ReplicaError(RuntimeError):
    """A replica or the balancer did not start; the message carries the end of its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str, timeout: float = 1.0) -> Optional[int]:
    """The HTTP status of GET ``url`` (None when nothing answered)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except OSError:
        return None


def _terminate(proc: subprocess.Popen[bytes], wait: float) -> None:
    """SIGTERM, and SIGKILL when it has not ended within ``wait`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


@dataclass
class Replica:
    """One ``tillsyn-central serve`` on 127.0.0.1:``port`` with its own directory."""

    index: int
    directory: Path
    port: int
    db_url: str
    extra_yaml: str = ""
    proc: Optional[subprocess.Popen[bytes]] = None

    @property
    def name(self) -> str:
        return f"replica{self.index}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config(self) -> Path:
        return self.directory / "central.yaml"

    @property
    def log(self) -> Path:
        return self.directory / "central.log"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f"state_dir: {self.directory}\n"
            f"database_url: {self.db_url}\n"
            f"listen:\n  host: 127.0.0.1\n  port: {self.port}\n"
            f"{self.extra_yaml}"
        )
        argv = [sys.executable, "-m", "central.cli", "--config", str(self.config), "serve"]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)

    def healthy(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise ReplicaError(f"{self.name} exited at start-up:\n{_tail(self.log)}")
        return _get(self.url + "/healthz") == 200

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as in a crash."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            _terminate(self.proc, 20)
        self.proc = None


def haproxy_config(port: int, servers: List[Replica], stats: Path) -> str:
    """HAProxy in HTTP mode on 127.0.0.1:``port``: round robin over ``servers``, each checked on
    /healthz every second (down after 2 failures, up after 1 success); a request whose connection
    to a server failed goes to another (it never reached the centre, so it cannot be stored twice)."""
    lines = [
        "global",
        "    maxconn 4096",
        f"    stats socket {stats} mode 600 level admin",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout http-request 30s",
        "    timeout http-keep-alive 60s",
        "    retries 2",
        "    retry-on conn-failure",
        "    option redispatch",
        "    option forwardfor",
        "frontend tillsyn",
        f"    bind 127.0.0.1:{port}",
        "    default_backend centre",
        "backend centre",
        "    balance roundrobin",
        "    option httpchk GET /healthz",
        "    http-check expect status 200",
        "    default-server check inter 1s fall 2 rise 1",
    ]
    lines += [f"    server {r.name} 127.0.0.1:{r.port}" for r in servers]
    return "\n".join(lines) + "\n"


@dataclass
class Replicas:
    """The running replicas and their balancer; :attr:`url` is the balancer's base URL."""

    db_url: str
    data_dir: Path
    members: List[Replica] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    proc: Optional[subprocess.Popen[bytes]] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stats_socket(self) -> Path:
        return self.data_dir / "haproxy.sock"

    @property
    def balancer_log(self) -> Path:
        return self.data_dir / "haproxy.log"

    def start_balancer(self) -> None:
        config = self.data_dir / "haproxy.cfg"
        config.write_text(haproxy_config(self.port, self.members, self.stats_socket))
        check = subprocess.run([HAPROXY, "-c", "-q", "-f", str(config)], capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise ReplicaError(f"haproxy refused its configuration {config}: {check.stderr.strip()}")
        with self.balancer_log.open("ab") as log:
            self.proc = subprocess.Popen([HAPROXY, "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)

    def server_states(self) -> Dict[str, str]:
        """Each server's state as HAProxy sees it (``UP``, ``DOWN``, ...), from its stats socket."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(2)
            sock.connect(str(self.stats_socket))
            sock.sendall(b"show stat\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        lines = b"".join(chunks).decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        states = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(",")))
            if row.get("pxname") == "centre" and row.get("svname", "").startswith("replica"):
                states[row["svname"]] = row["status"]
        return states

    def wait_until_up(self, names: List[str], timeout: float = START_S) -> None:
        """Until HAProxy reports the replicas ``names`` up (and so sends them requests)."""
        deadline = time.monotonic() + timeout
        states: Dict[str, str] = {}
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise ReplicaError(f"haproxy exited:\n{_tail(self.balancer_log)}")
            try:
                states = self.server_states()
            except OSError:
                states = {}
            if all(states.get(name, "").startswith("UP") for name in names):
                return
            time.sleep(0.1)
        raise ReplicaError(f"haproxy did not see {names} up within {timeout:g} s: {states}")

    def kill(self, index: int) -> Replica:
        """SIGKILL replica ``index`` (the balancer finds it down within two checks, 2 s)."""
        replica = self.members[index]
        replica.kill()
        return replica

    def alive(self) -> List[Replica]:
        return [r for r in self.members if r.proc is not None and r.proc.poll() is None]

    def stop(self) -> None:
        if self.proc is not None:
            _terminate(self.proc, 10)
        self.proc = None
        for replica in self.members:
            replica.stop()


@contextmanager
def running(db_url: str, count: int, data_dir: Path, extra_yaml: str = "") -> Iterator[Replicas]:
    """``count`` replicas on ``db_url`` behind HAProxy, all up before it yields; stopped on exit.

    ``extra_yaml``: more lines of every replica's ``central.yaml`` (an ``alerting:`` section, say)."""
    if not db_url.startswith("postgresql"):
        raise ValueError(
            f"replicas need PostgreSQL, not {db_url.split(':', 1)[0]!r}: a SQLite database is served by one process"
        )
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    if shutil.which(HAPROXY) is None:
        raise ReplicaError(f"{HAPROXY} not found: install Debian's haproxy package")
    data_dir.mkdir(parents=True, exist_ok=True)
    group = Replicas(db_url, data_dir)
    try:
        for i in range(count):
            # several replicas migrating at once take turns on an advisory lock (central/db/migrate.py)
            replica = Replica(i, data_dir / f"replica-{i}", free_port(), db_url, extra_yaml)
            group.members.append(replica)
            replica.start()
        deadline = time.monotonic() + START_S
        waiting = list(group.members)
        while waiting:
            waiting = [r for r in waiting if not r.healthy()]
            if waiting and time.monotonic() > deadline:
                raise ReplicaError(f"{waiting[0].name} not healthy within {START_S:g} s:\n{_tail(waiting[0].log)}")
            if waiting:
                time.sleep(0.1)
        group.start_balancer()
        group.wait_until_up([r.name for r in group.members])
        yield group
    finally:
        group.stop()


@contextmanager
def replicas(db_url: str, count: int, data_dir: Path) -> Iterator[str]:
    """``count`` ``tillsyn-central serve`` processes on the PostgreSQL ``db_url`` behind HAProxy on
    loopback; yields the balancer's base URL (``http://127.0.0.1:PORT``)."""
    with running(db_url, count, data_dir) as group:
        yield group.url
