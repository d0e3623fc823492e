"""Reports parsed by ingest are judged without parsing them again (central/ingest/parsed_cache.py), and only
when the row judged holds the body they were parsed from."""

from __future__ import annotations

from typing import Any, List

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from central.db.schema import latest_evidence, reports
from central.ingest.parsed_cache import ParsedReports
from central.judging import evaluation
from central.judging.evaluation import evaluate_pending
from central.runtime.service import Centre
from evidence.wire import Report, parse_report
from tests.central.conftest import Node, evidence_record, stored_not_judged
from tests.central.judging.helpers import RULE, SSH, TELNET, _ports, _status


def _report(n: int) -> Report:
    return Report("a" * 32, f"r{n}", n, evidence_record().collected_at, "test", (evidence_record(),))


def test_kept_reports_are_taken_once_by_row_and_digest_and_the_oldest_go_first() -> None:
    kept = ParsedReports(keep=2)
    kept.put([(1, "d1", _report(1), 10), (2, "d2", _report(2), 10)])
    assert kept.take(1, "other digest") is None  # and it is gone: a mismatch is never retried
    assert kept.take(1, "d1") is None
    kept.put([(3, "d3", _report(3), 10)])
    kept.put([(4, "d4", _report(4), 10)])  # beyond keep: row 2 is dropped
    assert kept.take(2, "d2") is None
    taken = kept.take(3, "d3")
    assert taken is not None and taken.report_id == "r3"
    assert kept.take(3, "d3") is None
    assert len(kept) == 1


def test_kept_reports_are_bounded_by_their_bodies_size_too() -> None:
    kept = ParsedReports(keep=100, keep_bytes=1000)
    kept.put([(1, "d1", _report(1), 600), (2, "d2", _report(2), 300)])
    kept.put([(3, "d3", _report(3), 300)])  # 1,200 bytes: the oldest goes
    assert kept.take(1, "d1") is None
    assert kept.take(2, "d2") is not None  # 300 left, then 600 with row 4
    kept.put([(4, "d4", _report(4), 300), (5, "d5", _report(5), 5000)])  # one over the bound alone: none kept
    assert len(kept) == 0


def _counting_parse(monkeypatch: pytest.MonkeyPatch) -> List[Any]:
    parsed: List[Any] = []

    def counted(body: bytes, where: str = "report") -> Report:
        parsed.append(body)
        return parse_report(body, where)

    monkeypatch.setattr(evaluation, "parse_report", counted)
    return parsed


def _latest(centre: Centre, agent_id: str) -> Any:
    with centre.engine.connect() as conn:
        return conn.execute(select(latest_evidence.c.record).where(latest_evidence.c.agent_id == agent_id)).scalar_one()


def test_a_report_ingest_parsed_is_judged_without_parsing_it_again(
    client: TestClient, centre: Centre, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed = _counting_parse(monkeypatch)
    answer = node.send(node.report(_ports(SSH, TELNET)))
    assert answer.status_code == 200, answer.text
    assert _status(centre, node.agent_id) == "failing"  # judged, at once here (no evaluator thread)
    assert parsed == []
    assert len(centre.parsed) == 0  # taken, not kept on
    with_handoff = _latest(centre, node.agent_id)

    # the same record judged from the stored body gives the same latest evidence
    other = node.report(_ports(SSH, TELNET))
    stored_not_judged(centre, node, other)
    evaluate_pending(centre.engine, centre.policy.policy, parsed=ParsedReports())  # as another process would
    assert len(parsed) == 1
    from_body = _latest(centre, node.agent_id)
    assert {k: v for k, v in with_handoff.items() if k != "collected_at"} == {
        k: v for k, v in from_body.items() if k != "collected_at"
    }


def test_a_kept_report_whose_row_holds_another_body_is_not_used(centre: Centre, node: Node) -> None:
    """Whatever was kept under a row id, the row's own body is judged unless the digests match."""
    stored = node.report(_ports(SSH, TELNET))
    stored_not_judged(centre, node, stored)
    with centre.engine.connect() as conn:
        pk = conn.execute(select(reports.c.id).where(reports.c.report_id == stored["report_id"])).scalar_one()
    innocent = Report(node.agent_id, stored["report_id"], 1, evidence_record().collected_at, "test", (_ports(SSH),))
    centre.parsed.put([(pk, "not the body's digest", innocent, 100)])
    evaluate_pending(centre.engine, centre.policy.policy, parsed=centre.parsed)
    assert _status(centre, node.agent_id, RULE) == "failing"  # TELNET from the stored body, not the kept report
