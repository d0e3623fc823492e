"""Engines for the two supported databases: SQLite (embedded, WAL) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager
from typing import Any, Iterator

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from central.db import jsoncodec


class DatabaseURLError(ValueError):
    """The database URL names a database Tillsyn does not support."""


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and pin the driver to psycopg 3; SQLite as is."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return str(parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False))
    if backend == "sqlite":
        return url
    raise DatabaseURLError(f"unsupported database {backend!r}: use sqlite:///PATH or postgresql://...")


_SQLITE_WRITERS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the one writer. FULL syncs the WAL at every commit: an
    # acknowledged report survives a power failure or a kernel crash too, not only a killed
    # process (NORMAL may lose the last commits then, which the agent has already dropped from
    # its spool). The group writer commits a batch at a time, so this is one fsync per batch.
    # busy_timeout makes writers queue instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    kwargs = {"json_serializer": jsoncodec.dumps, "json_deserializer": jsoncodec.loads, **kwargs}
    if url.startswith("sqlite"):
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)

        # pysqlite's own transaction handling defers BEGIN; take the write lock at BEGIN so
        # two writers queue on busy_timeout instead of failing on lock upgrade.
        @event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            immediate = conn.get_execution_options().get("tillsyn_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        _SQLITE_WRITERS[engine] = threading.Lock()
        return engine
    # As many connections as the web framework has worker threads (40), so none is opened and
    # closed per request under load; PostgreSQL allows 100 by default, enough for two replicas.
    engine = create_engine(url, pool_pre_ping=True, **{"pool_size": 20, "max_overflow": 20, **kwargs})
    event.listen(engine, "connect", _pg_session_in_utc)
    return engine


def _pg_session_in_utc(dbapi_connection: Any, _record: Any) -> None:
    """Sessions in UTC, so psycopg hands back times already in datetime.timezone.utc and reading them
    needs no conversion (a list of 10,000 nodes has 30,000). Every time is stored and compared with
    its zone, so nothing else depends on the session's zone; where a pooler drops the setting, times
    are converted as before."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    dbapi_connection.execute("SET TIME ZONE 'UTC'")
    dbapi_connection.autocommit = autocommit


def try_advisory_lock(conn: Connection, key: int) -> bool:
    """On PostgreSQL, take the transaction-scoped advisory lock ``key`` if free (False when another
    process holds it); on SQLite always True: the write transaction already excludes other writers."""
    if conn.dialect.name != "postgresql":
        return True
    return bool(conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key}).scalar())


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it takes the write lock at BEGIN.

    SQLite has one writer at a time; threads of this process queue on a lock in order
    instead of polling SQLite's busy handler (which sleeps and retries, and made the
    99th percentile seconds long under load).  Other processes still meet busy_timeout.
    """
    lock = _SQLITE_WRITERS.get(engine)
    if lock is not None:
        lock.acquire()
    try:
        with engine.connect() as plain:
            conn = plain.execution_options(tillsyn_write=True)
            with conn.begin():
                yield conn
    finally:
        if lock is not None:
            lock.release()


@contextmanager
def read_tx(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn, conn.begin():
        yield conn


@contextmanager
def snapshot_tx(engine: Engine) -> Iterator[Connection]:
    """A read transaction that sees the database as it was at its first statement throughout: for
    ``verify`` and the export, which read a node's report rows and then their pieces in later
    statements while an erasure may rewrite both.  SQLite's read transactions already do (BEGIN, WAL);
    on PostgreSQL it is REPEATABLE READ, which a transaction that only reads never fails."""
    with engine.connect() as plain:
        conn = (
            plain.execution_options(isolation_level="REPEATABLE READ") if plain.dialect.name == "postgresql" else plain
        )
        with conn.begin():
            yield conn
