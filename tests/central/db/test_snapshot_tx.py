"""``snapshot_tx`` (central/db/engine.py): ``verify`` and the export read a node's report rows and
then their pieces in later statements; an erasure that commits in between must not show them a row
of before and pieces of after.  On SQLite and PostgreSQL, a write committed by another connection
during a snapshot transaction is not seen by it, and is seen by a plain read transaction."""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from central.db.engine import read_tx, snapshot_tx, write_tx
from central.db.schema import agents
from central.runtime.service import Centre
from tests.central.conftest import Node


def _hostname(conn: Connection, agent_id: str) -> str:
    return str(conn.execute(select(agents.c.hostname).where(agents.c.id == agent_id)).scalar())


def test_a_snapshot_does_not_see_what_commits_during_it(centre: Centre, node: Node) -> None:
    def rename(to: str) -> None:
        with write_tx(centre.engine) as conn:
            conn.execute(update(agents).where(agents.c.id == node.agent_id).values(hostname=to))

    with snapshot_tx(centre.engine) as conn:
        before = _hostname(conn, node.agent_id)
        rename("renamed.example")
        assert _hostname(conn, node.agent_id) == before
    if centre.engine.dialect.name == "postgresql":  # READ COMMITTED: the case snapshot_tx is for
        with read_tx(centre.engine) as conn:
            assert _hostname(conn, node.agent_id) == "renamed.example"
            rename("again.example")
            assert _hostname(conn, node.agent_id) == "again.example"
