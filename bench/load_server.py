"""The centre under load: a real ``tillsyn-central serve`` subprocess, its database, its CPU.

SQLite lives in a temporary state directory; PostgreSQL gets a fresh database
in the server at 127.0.0.1:5432 (user postgres, trust auth), dropped afterwards.
CPU is read from /proc: the centre's process, the PostgreSQL backends serving
its database, and the whole machine (other work on it shows up there).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PG_ADMIN = os.environ.get("TILLSYN_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one run, dropped (with its connections) afterwards."""
    name = f"tillsyn_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent not idle (all cores)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / CLK_TCK


class Centre:
    """``tillsyn-central serve`` on 127.0.0.1 with its own config and state directory."""

    def __init__(self, state: Path, database_url: Optional[str]) -> None:
        self.state = state
        self.port = free_port()
        self.database_url = database_url or f"sqlite:///{state / 'central.db'}"
        self.config = state / "central.yaml"
        self.config.write_text(
            f"state_dir: {state}\n"
            f"database_url: {self.database_url.replace('+psycopg', '')}\n"
            f"listen:\n  host: 127.0.0.1\n  port: {self.port}\n"
        )
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.log = state / "serve.log"

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [str(BIN / "tillsyn-central"), "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode not in (0, 1):
            raise SystemExit(f"tillsyn-central {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def start(self, duties: bool = True) -> None:
        argv = [str(BIN / "tillsyn-central"), "--config", str(self.config), "serve"]
        if not duties:
            argv.append("--no-duties")
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the centre exited at start-up:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/livez", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"the centre did not answer /livez within 30 s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def backend_pids(self) -> List[int]:
        """PostgreSQL backend processes serving this centre's database (none on SQLite)."""
        if not self.database_url.startswith("postgresql"):
            return []
        name = self.database_url.rsplit("/", 1)[1]
        engine = create_engine(PG_ADMIN)
        try:
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :n"), {"n": name})
                return [int(r.pid) for r in rows]
        finally:
            engine.dispose()

    def sample(self) -> Dict[str, float]:
        """CPU seconds so far: the centre, each of its database backends, the machine, this client."""
        assert self.proc is not None
        # Per backend, so a phase is charged only what each live backend spent in it; a
        # backend that exited during the phase (pool overflow) is not counted: a lower bound.
        values = {f"pg:{pid}": proc_cpu_s(pid) for pid in self.backend_pids()}
        values.update(centre=proc_cpu_s(self.proc.pid), machine=machine_busy_s())
        values["client"] = time.process_time()  # last: the database query above is not load
        return values
