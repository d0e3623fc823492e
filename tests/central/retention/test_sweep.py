"""Retention (M08) on SQLite and PostgreSQL, with rows back-dated by direct SQL: old reports go as
a chain prefix behind a checkpoint the rest verifies from, pseudonyms expire with their reports,
finding history keeps the change in force, old resolved incidents and audit entries go, and each
run is recorded by ``system:retention``."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from central import audit
from central.db.engine import read_tx, write_tx
from central.db.schema import (
    agents,
    audit_log,
    finding_changes,
    incident_events,
    incidents,
    latest_evidence,
    outbox,
    reports,
)
from central.export.build import build
from central.export.model import Request, iso
from central.ingest.ledger import verify_chain
from central.ingest.ledger_check import ledger_entries
from central.retention.sweep import ACTOR, checkpoints, run
from central.runtime.duties import run_once
from central.runtime.service import Centre
from tests.central.conftest import Node, cli_env, evidence_record, run_cli, snapshot
from tests.central.export.helpers import TELNET
from tests.central.retention.helpers import SETTINGS
from tests.shipped import shipped_rule_count

NOW = datetime.now(timezone.utc).replace(microsecond=0)
OLD = NOW - timedelta(days=500)
PSEUDONYM = "u-7f3a9c2e"


def _age_reports(centre: Centre, node: Node, upto: int, at: datetime) -> None:
    with write_tx(centre.engine) as conn:
        conn.execute(
            update(reports)
            .where(reports.c.agent_id == node.agent_id, reports.c.chain_index <= upto)
            .values(received_at=at)
        )
        conn.execute(
            update(latest_evidence)
            .where(latest_evidence.c.agent_id == node.agent_id, latest_evidence.c.collector == "sessions")
            .values(collected_at=at)
        )


def _chain(centre: Centre, node: Node) -> List[Any]:
    with centre.engine.connect() as conn:
        agent = conn.execute(select(agents).where(agents.c.id == node.agent_id)).mappings().one()
        entries = list(ledger_entries(conn, node.agent_id))
        mark = checkpoints(conn, [node.agent_id]).get(node.agent_id)
    start = (mark.chain_index, mark.entry_hash) if mark else (0, "0" * 64)
    return verify_chain(
        node.agent_id,
        agent["public_key"],
        entries,
        agent["ledger_length"],
        agent["ledger_head"],
        *start,
    )


def test_old_reports_go_behind_a_checkpoint_and_pseudonyms_with_them(centre: Centre, node: Node) -> None:
    sessions = evidence_record("sessions", {"users": [PSEUDONYM]})
    assert node.send(node.report(evidence_record("ports", {"sockets": [TELNET]}), sessions)).status_code == 200
    for _ in range(4):
        assert node.send(node.report(evidence_record("ports", {"sockets": []}))).status_code == 200
    _age_reports(centre, node, 3, OLD)
    with centre.engine.connect() as conn:
        third = conn.execute(
            select(reports.c.entry_hash, reports.c.seq).where(
                reports.c.agent_id == node.agent_id, reports.c.chain_index == 3
            )
        ).one()
    assert PSEUDONYM in json.dumps(snapshot(centre), default=str)

    with write_tx(centre.engine) as conn:
        done = run(conn, SETTINGS, NOW)
    assert (done.reports, done.latest_evidence, done.nodes, done.more) == (3, 1, 1, False)
    with centre.engine.connect() as conn:
        left = conn.execute(select(reports.c.chain_index).where(reports.c.agent_id == node.agent_id)).scalars().all()
        collectors = (
            conn.execute(select(latest_evidence.c.collector).where(latest_evidence.c.agent_id == node.agent_id))
            .scalars()
            .all()
        )
        mark = checkpoints(conn)[node.agent_id]
        (entry,) = conn.execute(select(audit_log).where(audit_log.c.actor == ACTOR)).mappings().all()
    assert sorted(left) == [4, 5] and collectors == ["ports"]  # the newer ports evidence stays
    assert (mark.chain_index, mark.entry_hash, mark.seq) == (3, third.entry_hash, third.seq)
    assert entry["action"] == "retention.run" and entry["detail"]["reports"] == 3
    assert entry["detail"]["latest_evidence"] == 1 and entry["source"] == "duty"
    assert PSEUDONYM not in json.dumps(snapshot(centre), default=str)  # nowhere in any table
    assert _chain(centre, node) == []  # the rest verifies from the checkpoint

    # A second round finds nothing and records nothing; the chain keeps growing from where it was.
    with write_tx(centre.engine) as conn:
        assert not run(conn, SETTINGS, NOW).anything
    assert node.send(node.report()).status_code == 200
    assert _chain(centre, node) == []
    with centre.engine.connect() as conn:
        assert conn.execute(select(func.count()).where(audit_log.c.actor == ACTOR)).scalar() == 1


def test_rounds_are_bounded_and_the_duty_runs_them(centre: Centre, node: Node) -> None:
    for _ in range(5):
        assert node.send(node.report()).status_code == 200
    _age_reports(centre, node, 5, OLD)
    with write_tx(centre.engine) as conn:
        first = run(conn, SETTINGS, NOW, batch=2)
    assert (first.reports, first.more) == (2, True)
    assert _chain(centre, node) == []
    result = run_once(centre.engine, centre.policy, 3600, now=NOW, retention=SETTINGS)
    assert result.ran
    with centre.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(reports)).scalar() == 0
        assert checkpoints(conn)[node.agent_id].chain_index == 5
    assert _chain(centre, node) == []  # an empty chain whose checkpoint is the recorded head


def test_history_keeps_the_change_in_force(centre: Centre, node: Node) -> None:
    rule = "ports-no-plaintext-remote"
    assert node.send(node.report(evidence_record("ports", {"sockets": [TELNET]}))).status_code == 200
    assert node.send(node.report(evidence_record("ports", {"sockets": []}))).status_code == 200
    assert node.send(node.report(evidence_record("ports", {"sockets": [TELNET]}))).status_code == 200
    times = [NOW - timedelta(days=d) for d in (700, 600, 500, 10)]  # stale, failing, passing, failing
    with write_tx(centre.engine) as conn:
        conn.execute(update(agents).values(enrolled_at=times[0]))
        ids = conn.execute(select(finding_changes.c.id, finding_changes.c.rule_id).order_by(finding_changes.c.id)).all()
        steps: Dict[str, int] = {}
        for row_id, rule_id in ids:
            step = steps.get(rule_id, 0)
            steps[rule_id] = step + 1
            conn.execute(update(finding_changes).where(finding_changes.c.id == row_id).values(at=times[step]))
    moment = NOW - timedelta(days=300)
    with read_tx(centre.engine) as conn:
        before = build(conn, Request(moment), centre.policy.policy)["nodes"]

    with write_tx(centre.engine) as conn:
        done = run(conn, SETTINGS, NOW)
    # The telnet rule's stale and failing (its passing was in force at the cut-off), and the
    # stale before passing of the two other ports rules.
    assert done.finding_changes == 4
    with centre.engine.connect() as conn:
        kept = (
            conn.execute(
                select(finding_changes.c.to_status)
                .where(finding_changes.c.rule_id == rule)
                .order_by(finding_changes.c.id)
            )
            .scalars()
            .all()
        )
        total = conn.execute(select(func.count()).select_from(finding_changes)).scalar()
    # one change in force per rule, plus the new failing
    assert kept == ["passing", "failing"] and total == shipped_rule_count() + 1
    with read_tx(centre.engine) as conn:
        assert build(conn, Request(moment), centre.policy.policy)["nodes"] == before


def test_old_resolved_incidents_and_audit_entries_go(centre: Centre, node: Node) -> None:
    with write_tx(centre.engine) as conn:
        made: List[int] = []
        for status, resolved in (("resolved", OLD), ("open", None), ("resolved", NOW - timedelta(days=5))):
            incident = conn.execute(
                incidents.insert()
                .returning(incidents.c.id)
                .values(
                    agent_id=node.agent_id,
                    rule_id=f"r-{len(made)}",
                    kind="finding",
                    status=status,
                    severity="high",
                    title="t",
                    controls=["M07"],
                    observed=None,
                    dedup_key=f"k{len(made)}",
                    opened_at=OLD,
                    resolved_at=resolved,
                )
            ).scalar_one()
            conn.execute(incident_events.insert().values(incident_id=incident, at=OLD, kind="detected"))
            conn.execute(
                outbox.insert().values(
                    incident_id=incident,
                    channel="mail",
                    event="trigger",
                    created_at=OLD,
                    next_attempt_at=OLD,
                    attempts=1,
                    sent_at=OLD,
                )
            )
            made.append(incident)
        audit.record(conn, OLD, "cli:alice", "waiver.create", "w1")
        audit.record(conn, NOW - timedelta(days=5), "cli:alice", "waiver.revoke", "w1")
        done = run(conn, SETTINGS, NOW)
    assert (done.incidents, done.incident_events, done.audit_entries) == (1, 1, 1)
    with centre.engine.connect() as conn:
        assert conn.execute(select(incidents.c.id).order_by(incidents.c.id)).scalars().all() == made[1:]
        assert conn.execute(select(func.count()).select_from(outbox)).scalar() == 2
        actions = (
            conn.execute(
                select(audit_log.c.action).where(audit_log.c.actor.in_(["cli:alice", ACTOR])).order_by(audit_log.c.id)
            )
            .scalars()
            .all()
        )
    assert actions == ["waiver.revoke", "retention.run"]


def test_cli_run_and_an_export_made_before_still_verifies(
    client: TestClient, centre: Centre, node: Node, tmp_path: Path
) -> None:
    for _ in range(3):
        assert node.send(node.report()).status_code == 200
    env = cli_env(
        tmp_path, centre.config.db_url, f"state_dir: {tmp_path / 'state'}\nretention: {{reports_days: 400}}\n"
    )
    _age_reports(centre, node, 3, OLD)  # received long ago: the export made now says so
    path = tmp_path / "audit.json"
    made = run_cli(env, ["export", "report", "--all-tenants", "--with-evidence", "-o", str(path)])[0]
    assert made.returncode == 0, made.stderr
    (pruned,) = run_cli(env, ["retention", "run"])
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.startswith("deleted: 3 reports, 1 latest evidence, 1 nodes, 0 finding changes")
    checked = run_cli(env, ["export", "verify", str(path)])[0]
    assert checked.returncode == 0, checked.stdout
    assert (
        f"NOTE nodes[{node.agent_id}].reports[" in checked.stdout
        and "deleted by retention since the export" in checked.stdout
    )
    assert run_cli(env, ["export", "verify", "--offline", str(path)])[0].returncode == 0


def test_tillsyn_central_verify_after_retention(centre: Centre, node: Node, tmp_path: Path) -> None:
    for _ in range(3):
        assert node.send(node.report()).status_code == 200
    _age_reports(centre, node, 2, OLD)
    with write_tx(centre.engine) as conn:
        run(conn, SETTINGS, NOW)
    (checked,) = run_cli(cli_env(tmp_path, centre.config.db_url), ["verify"])
    assert checked.returncode == 0, checked.stdout
    with centre.engine.connect() as conn:
        mark = checkpoints(conn)[node.agent_id]
    assert checked.stdout.splitlines()[0] == (
        f"CHECKPOINT {node.agent_id}: entries 1-2 deleted by retention at {iso(NOW)} (round's cut-off "
        f"{iso(NOW - timedelta(days=400))}); verified on from entry 2 (hash {mark.entry_hash}, received {iso(OLD)})"
    )
