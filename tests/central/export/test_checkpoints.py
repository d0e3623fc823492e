"""A ledger checkpoint retention did not make, on SQLite and PostgreSQL: reports deleted minutes after
they arrived, hidden behind a checkpoint copied from the ledger, are a break for ``verify`` and a
mismatch for ``export verify``, never "deleted by retention"."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Optional

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from central import audit
from central.config import Retention
from central.db.engine import read_tx, write_tx
from central.db.schema import reports
from central.ingest.ledger_check import verify_store
from central.retention.checkpoint_origin import judge
from central.retention.sweep import ACTOR, checkpoints, ledger_checkpoints
from central.runtime.service import Centre
from tests.central.conftest import Node, evidence_record, new_token
from tests.central.export.helpers import TELNET, cli

NOW = datetime.now(timezone.utc)


def _node(client: TestClient, centre: Centre) -> Node:
    """Three reports: telnet open (failing), closed, closed."""
    node = Node(client)
    node.enrol(new_token(centre, tenant="acme"))
    assert node.send(node.report(evidence_record("ports", {"sockets": [TELNET]}))).status_code == 200
    for _ in range(2):
        assert node.send(node.report(evidence_record("ports", {"sockets": []}))).status_code == 200
    return node


def _forge(centre: Centre, node: Node, received_at: Optional[datetime], cutoff: Optional[datetime] = None) -> None:
    """Delete entries 1-2 and move the checkpoint onto entry 2, by hand: no hash needs computing.
    ``received_at``: what the checkpoint claims (None: the truth); ``cutoff``: also forge the audit entry."""
    with write_tx(centre.engine) as conn:
        second = conn.execute(
            select(reports).where(reports.c.agent_id == node.agent_id, reports.c.chain_index == 2)
        ).one()
        conn.execute(reports.delete().where(reports.c.agent_id == node.agent_id, reports.c.chain_index <= 2))
        conn.execute(
            ledger_checkpoints.insert().values(
                agent_id=node.agent_id,
                chain_index=2,
                entry_hash=second.entry_hash,
                seq=second.seq,
                received_at=received_at or second.received_at,
                pruned_at=NOW,
            )
        )
        if cutoff is not None:
            detail = {"reports": 2, "reports_before": cutoff.isoformat()}
            audit.record(conn, NOW, ACTOR, "retention.run", None, detail, "duty")


def test_verify_breaks_on_a_checkpoint_no_retention_round_made(
    client: TestClient, centre: Centre, tmp_path: Path
) -> None:
    node = _node(client, centre)
    _forge(centre, node, NOW - timedelta(days=500))
    checked = cli(centre, tmp_path, "verify")
    assert checked.returncode == 1, checked.stdout
    assert f"BROKEN {node.agent_id}: checkpoint at entry 2 (received " in checked.stdout
    assert "no retention round that deleted reports is recorded in the audit trail at that time" in checked.stdout
    assert f"CHECKPOINT {node.agent_id}: entries 1-2 deleted by retention at " in checked.stdout
    assert verify_store(centre.engine)[1]


def test_verify_breaks_on_a_checkpoint_younger_than_its_rounds_cutoff(
    client: TestClient, centre: Centre, tmp_path: Path
) -> None:
    node = _node(client, centre)
    _forge(centre, node, None, cutoff=NOW - timedelta(days=400))
    checked = cli(centre, tmp_path, "verify")
    assert checked.returncode == 1, checked.stdout
    assert "not received before the cut-off" in checked.stdout
    assert "of the retention round that made it" in checked.stdout


def test_an_export_made_before_names_reports_retention_did_not_delete(
    client: TestClient, centre: Centre, tmp_path: Path
) -> None:
    node = _node(client, centre)
    path = tmp_path / "audit.json"
    made = cli(centre, tmp_path, "export", "report", "--tenant", "acme", "--with-evidence", "-o", str(path))
    assert made.returncode == 0, made.stderr
    cited = {r["chain_index"]: r for r in json.loads(path.read_text())["nodes"][0]["reports"]}
    # The forger backs the checkpoint with an audit entry and an old time: the ledger alone cannot tell...
    _forge(centre, node, NOW - timedelta(days=500), cutoff=NOW - timedelta(days=400))
    assert cli(centre, tmp_path, "verify").returncode == 0
    # ...but the export recorded when the reports arrived: minutes ago, not before retention's cut-off.
    checked = cli(centre, tmp_path, "export", "verify", str(path))
    assert checked.returncode == 1, checked.stdout
    assert "NOTE" not in checked.stdout
    for index in (1, 2):
        line = (
            f"MISMATCH nodes[{node.agent_id}].reports[{cited[index]['report_id']}]: deleted, but received at "
            f"{cited[index]['received_at']}, after the last report retention deleted (entry 2, received "
        )
        assert line in checked.stdout, checked.stdout


@pytest.mark.parametrize(
    ("received_days", "pruned_days", "cutoff_days", "problem"),
    [
        (500, 0, 400, None),  # the round is in the audit trail and the entry is older than its cut-off
        (500, 3000, None, None),  # the round's audit entry went with audit_days; the entry is old enough
        (100, 3000, None, "received within the 400 days reports are kept"),
        (500, 10, None, "no retention round that deleted reports is recorded"),
        (300, 0, 400, "not received before the cut-off"),
    ],
)
def test_a_checkpoint_is_retentions_when_the_trail_or_the_settings_allow_it(
    node: Node,
    centre: Centre,
    received_days: int,
    pruned_days: int,
    cutoff_days: Optional[int],
    problem: Optional[str],
) -> None:
    pruned_at = NOW - timedelta(days=pruned_days)
    with write_tx(centre.engine) as conn:
        conn.execute(
            ledger_checkpoints.insert().values(
                agent_id=node.agent_id,
                chain_index=7,
                entry_hash="a" * 64,
                seq=7,
                received_at=NOW - timedelta(days=received_days),
                pruned_at=pruned_at,
            )
        )
        if cutoff_days is not None:
            cutoff = pruned_at - timedelta(days=cutoff_days)
            detail = {"reports": 7, "reports_before": cutoff.isoformat()}
            audit.record(conn, pruned_at, ACTOR, "retention.run", None, detail)
    with read_tx(centre.engine) as conn:
        judged: Any = judge(conn, checkpoints(conn), Retention(reports_days=400, audit_days=2000), NOW)[node.agent_id]
    if problem is None:
        assert judged.problem is None
    else:
        assert problem in judged.problem
