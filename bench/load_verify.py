"""After a load run: was every acknowledged report stored exactly once, and is every chain intact?"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Set, Tuple

from sqlalchemy import create_engine, text

from bench.load_http import Request
from bench.load_server import Centre


@dataclass
class Ledger:
    """What the client sent and what the centre acknowledged, per node."""

    sent: Dict[int, Set[str]] = field(default_factory=lambda: defaultdict(set))
    acked: Dict[int, Set[str]] = field(default_factory=lambda: defaultdict(set))
    refused: List[str] = field(default_factory=list)

    def add(self, answers: Iterable[Tuple[Request, int, bytes]]) -> None:
        for request, status, body in answers:
            self.sent[request.agent].add(request.report_id)
            if status != 200:
                self.refused.append(f"{status} {body[:200].decode(errors='replace')}")
                continue
            data = json.loads(body)
            self.acked[request.agent].update(data["acknowledged"])


@dataclass
class Check:
    nodes: int
    sent: int
    acked: int
    rows: int
    lost: int
    duplicated: int
    unexpected: int
    unacknowledged_stored: int
    verify_output: str
    verify_ok: bool

    @property
    def clean(self) -> bool:
        return self.verify_ok and not (self.lost or self.duplicated or self.unexpected or self.sent != self.acked)


def check(centre: Centre, agent_ids: List[str], ledger: Ledger) -> Check:
    engine = create_engine(centre.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT agent_id, report_id FROM reports")).all()
    finally:
        engine.dispose()
    index = {agent_id: i for i, agent_id in enumerate(agent_ids)}
    stored: Dict[int, List[str]] = defaultdict(list)
    for agent_id, report_id in rows:
        stored[index.get(agent_id, -1)].append(report_id)
    lost = duplicated = unexpected = unacked = 0
    for node in set(ledger.sent) | set(stored):
        ids = stored.get(node, [])
        distinct = set(ids)
        duplicated += len(ids) - len(distinct)
        lost += len(ledger.acked.get(node, set()) - distinct)
        unexpected += len(distinct - ledger.sent.get(node, set()))
        unacked += len(distinct - ledger.acked.get(node, set()))
    output = centre.cli("verify").strip()
    return Check(
        nodes=len(agent_ids),
        sent=sum(len(s) for s in ledger.sent.values()),
        acked=sum(len(s) for s in ledger.acked.values()),
        rows=len(rows),
        lost=lost,
        duplicated=duplicated,
        unexpected=unexpected,
        unacknowledged_stored=unacked,
        verify_output=output.splitlines()[-1] if output else "(no output)",
        verify_ok=output.endswith("all intact"),
    )
