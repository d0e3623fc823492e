"""What the judging tests share: the telnet rule (M07), a telnet and an ssh socket, a finding's recorded changes."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from sqlalchemy import select

from central.db.schema import finding_changes, findings
from central.runtime.service import Centre
from tests.central.conftest import (
    evidence_record,
)

RULE = "ports-no-plaintext-remote"

TELNET = {
    "protocol": "tcp",
    "address": "0.0.0.0",
    "port": 23,
    "exposure": "all",
    "tags": ["plaintext_remote"],
    "services": ["telnet"],
    "process": {"name": "inetd"},
}

SSH = dict(TELNET, port=22, tags=[], services=["ssh"], process={"name": "sshd"})


def changes(centre: Centre, agent_id: str, rule_id: str) -> List[Tuple[Any, Any, Any]]:
    with centre.engine.connect() as conn:
        rows = conn.execute(
            select(finding_changes.c.from_status, finding_changes.c.to_status, finding_changes.c.report_id)
            .where(finding_changes.c.agent_id == agent_id, finding_changes.c.rule_id == rule_id)
            .order_by(finding_changes.c.id)
        ).all()
    return [tuple(r) for r in rows]


def _status(centre: Centre, agent_id: str, rule_id: str = RULE) -> str:
    with centre.engine.connect() as conn:
        return str(
            conn.execute(
                select(findings.c.status).where(findings.c.agent_id == agent_id, findings.c.rule_id == rule_id)
            ).scalar_one()
        )


def _ports(*sockets: Dict[str, Any]) -> Any:
    return evidence_record("ports", {"sockets": list(sockets)})
