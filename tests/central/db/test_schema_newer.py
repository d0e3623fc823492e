"""A replica of an older version meets a schema a newer one migrated: it refuses with a sentence
(exit 2, which systemd does not retry) and changes nothing; on PostgreSQL it lets go of the
migration lock, so the next process is not held up."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from central.db import migrate
from central.db.engine import make_engine
from tests.central.conftest import cli_env, run_cli


def test_a_schema_newer_than_this_version_is_refused_and_left_alone(tmp_path: Path, database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
        with pytest.raises(migrate.SchemaNewer) as refused:
            migrate.upgrade(engine)
        assert migrate.current(engine) == "0999"
        # another process, while this one's connections stay open: it would wait on a lock left held
        (done,) = run_cli(cli_env(tmp_path, database_url), ["db", "upgrade"])
    finally:
        engine.dispose()
    assert str(refused.value) == (
        "the database's schema is at revision 0999, which this version of tillsyn-central does not know "
        f"(its newest is {migrate.head()}): a newer version migrated it; run that version here "
        "(docs/operations.md, Upgrades with replicas)"
    )
    assert done.returncode == 2 and done.stderr == f"tillsyn-central: {refused.value}\n", done.stderr
