"""A PostgreSQL server of the test's own: initdb into a temporary directory, a random port,
run as an unprivileged user (PostgreSQL refuses root), restarted and stopped by the test.

Never the machine's shared server on 5432, which other tests use at the same time.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import List, Optional

import pytest

from tests.centre_process import free_port
from tests.conftest import in_ci

USER = "tillsyn"
"""The database superuser initdb creates (trust authentication, loopback only)."""


def _bin_dir() -> Path:
    """Debian's newest PostgreSQL server binaries (package postgresql, e.g. /usr/lib/postgresql/15/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    message = "PostgreSQL's server binaries (initdb, pg_ctl) are not installed; scripts/test.sh installs postgresql"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def _os_user() -> Optional[str]:
    """Who runs the server when the tests run as root: Debian's postgres user, else nobody."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    pytest.fail("neither a postgres nor a nobody user to run PostgreSQL as (it refuses to run as root)")


class PgInstance:
    """initdb, start, restart (fast or immediate) and stop one server of its own."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.user = _os_user()
        self.port = free_port()
        # Not below pytest's tmp_path: that is root's, mode 0700, and the server's user must enter it.
        self.base = Path(tempfile.mkdtemp(prefix="tillsyn-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.base, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.base}"
        (self.base / "options").write_text(options)
        self._options = options

    @property
    def admin_url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.bin / tool), *args],
            user=self.user,
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"{tool} {' '.join(args)} failed ({done.returncode}): {done.stderr}{self.tail()}")
        return done

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""

    def start(self) -> PgInstance:
        self._run("pg_ctl", "start", "-w", "-D", str(self.data), "-l", str(self.log), "-o", self._options)
        return self

    def create_database(self, name: str) -> str:
        import psycopg  # the centre's driver; only its environment has it

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def restart(self, mode: str) -> None:
        """``pg_ctl restart -m fast`` (sessions ended, a checkpoint) or ``-m immediate`` (as a crash:
        every process killed, WAL replayed at the start); returns once the server accepts connections."""
        assert mode in ("fast", "immediate"), mode
        self._run("pg_ctl", "restart", "-w", "-m", mode, "-D", str(self.data), "-l", str(self.log), "-o", self._options)

    def backend_pids(self) -> List[int]:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'").fetchall()
        return [int(r[0]) for r in rows]

    def stop(self) -> None:
        subprocess.run(
            [str(self.bin / "pg_ctl"), "stop", "-w", "-m", "immediate", "-D", str(self.data)],
            user=self.user,
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(self.base, ignore_errors=True)


def wait_accepting(instance: PgInstance, seconds: float = 30) -> None:
    import psycopg

    deadline = time.monotonic() + seconds
    while True:
        try:
            with psycopg.connect(instance.admin_url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
