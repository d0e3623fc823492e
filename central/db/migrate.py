"""Bring a database to the newest schema with Alembic, safely from several replicas at once."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same in every replica.
_PG_LOCK_KEY = 0x7117_5E7E


class SchemaNewer(Exception):
    """The database's schema is at a revision this version does not know: a newer version migrated it."""


def _config(connection: Optional[Connection] = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    return str(ScriptDirectory.from_config(_config()).get_current_head())


class CannotGoBack(RuntimeError):
    """Raised by a migration's downgrade that would lose or break evidence, saying why; nothing is changed."""


DOWNGRADE_FLOOR = "0014"
"""The oldest revision ``db downgrade`` goes back to: the downgrades of 0010 to 0014 drop what those
migrations added (the erasures, the pieces report skeletons refer to, the changes' sentences), with
the evidence in it; going back further is a restore of the backup taken before the upgrade."""


def revisions() -> List[str]:
    """Every revision this version knows, oldest first."""
    return [script.revision for script in reversed(list(ScriptDirectory.from_config(_config()).walk_revisions()))]


def current(engine: Engine) -> Optional[str]:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _known(conn: Connection) -> None:
    """Refuse a schema newer than this version's migrations (a replica of the old version restarted
    after a new one migrated, say): with a sentence, not Alembic's traceback."""
    revision = MigrationContext.configure(conn).get_current_revision()
    if revision is None:
        return
    scripts = ScriptDirectory.from_config(_config())
    if revision not in {script.revision for script in scripts.walk_revisions()}:
        raise SchemaNewer(
            f"the database's schema is at revision {revision}, which this version of tillsyn-central "
            f"does not know (its newest is {scripts.get_current_head()}): a newer version migrated it; "
            "run that version here (docs/operations.md, Upgrades with replicas)"
        )


def upgrade(engine: Engine) -> str:
    """Upgrade to head; on PostgreSQL under an advisory lock so replicas take turns."""
    return _migrate(engine, "head")


def downgrade(engine: Engine, revision: str) -> str:
    """Take the schema back to ``revision`` (to go back to an earlier version, every replica stopped)."""
    return _migrate(engine, revision, back=True)


def _migrate(engine: Engine, revision: str, back: bool = False) -> str:
    with engine.connect() as plain:
        conn = plain.execution_options(tillsyn_write=True)
        sqlite = conn.dialect.name == "sqlite"
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            conn.commit()
        elif sqlite:
            # A migration that rebuilds a table (alembic's batch mode) drops the old one, which with
            # foreign keys on deletes its rows first, and ON DELETE CASCADE with them the rows of other
            # tables that refer to them (the evaluation queue's). Off for the migration (outside any
            # transaction, where SQLite honours it), checked before the commit, on again after.
            _sqlite_foreign_keys(conn, False)
        try:
            _known(conn)
            (command.downgrade if back else command.upgrade)(_config(conn), revision)
            if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                conn.rollback()
                raise RuntimeError(f"migrating to {revision} left rows whose foreign keys point nowhere; undone")
            conn.commit()
            reached = MigrationContext.configure(conn).get_current_revision()
        finally:
            if conn.dialect.name == "postgresql":
                conn.rollback()  # a step that raised undoes the steps before it (0017's, under 0016's refusal)
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
            elif sqlite:
                conn.rollback()
                _sqlite_foreign_keys(conn, True)
    return str(reached)


def _sqlite_foreign_keys(conn: Connection, on: bool) -> None:
    """SQLite's foreign key enforcement on this connection, set outside SQLAlchemy's transaction."""
    conn.connection.dbapi_connection.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")  # type: ignore[union-attr]
