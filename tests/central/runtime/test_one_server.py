"""A SQLite database is served by one ``tillsyn-central serve`` process (central/runtime/one_server.py):
a second one is refused with a sentence naming the database, and a SIGKILLed server leaves nothing
that stops the next one."""

from __future__ import annotations

from pathlib import Path

from central.runtime import one_server
from tests.centre_process import CentreProcess


def test_a_second_server_on_one_sqlite_database_is_refused_until_the_first_is_gone(tmp_path: Path) -> None:
    first = CentreProcess(tmp_path / "centre").start()
    try:
        second = first.cli("serve", "--port", "0", check=False)
        database = tmp_path / "centre" / "central.db"
        assert second.returncode == 2, second.stderr
        assert second.stderr.strip() == (
            f"tillsyn-central: {database}: another tillsyn-central serve already serves this SQLite database "
            f"(it holds {database}.serve-lock); SQLite is served by one process, several replicas need PostgreSQL"
        )
        assert first.cli("agent", "list").returncode == 0  # the administrator's commands still work
        first.kill()  # SIGKILL: the kernel lets go of the lock
        first.start()
    finally:
        first.stop()


def test_postgresql_and_memory_databases_are_not_claimed() -> None:
    assert one_server.claim("postgresql://tillsyn@127.0.0.1:5432/tillsyn") is None
    assert one_server.claim("sqlite://") is None
    assert one_server.claim("sqlite:///:memory:") is None
