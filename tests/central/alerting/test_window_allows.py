"""A maintenance window that allows a rule (M11: remote service only during a declared visit):
the incident timeline names the window's start and end when it accepts a deviation, and again
when the deviation outlives it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Tuple

from fastapi.testclient import TestClient
from sqlalchemy import select

from central.alerting.incidents import run_round
from central.alerting.manage import Scope, cancel_window, create_window
from central.alerting.settings import Alerting
from central.db.engine import read_tx, write_tx
from central.db.schema import incident_events, incidents
from central.runtime.service import Centre
from tests.central.conftest import Node, evidence_record

RULE = "ports-no-remote-service"
VNC = {"protocol": "tcp", "address": "0.0.0.0", "port": 5900, "exposure": "all", "tags": ["remote_service"]}
SETTINGS = Alerting.model_validate({"open_after_s": 0, "resolve_after_s": 0})
# The findings' "since" is the real time a report arrives, so the windows are placed around it.
START = (datetime.now(timezone.utc) + timedelta(minutes=20)).replace(second=0, microsecond=0)


def _span(window: str, start: datetime, end: datetime) -> str:
    until = f"{end:%H:%M}" if start.date() == end.date() else f"{end:%Y-%m-%d %H:%M}"
    return f"maintenance window {window} from {start:%Y-%m-%d %H:%M} to {until} UTC (vendor VNC session, ticket 4711)"


def _send(node: Node, sockets: List[Dict[str, Any]]) -> None:
    assert node.send(node.report(evidence_record("ports", {"sockets": sockets}))).status_code == 200


def _round(centre: Centre, at: datetime) -> None:
    with write_tx(centre.engine) as conn:
        run_round(conn, SETTINGS, at)


def _timelines(centre: Centre) -> List[Tuple[str, List[Tuple[str, str]]]]:
    """Per incident of RULE, oldest first: its status and its (kind, detail) events."""
    with read_tx(centre.engine) as conn:
        rows = conn.execute(select(incidents).where(incidents.c.rule_id == RULE).order_by(incidents.c.id)).mappings()
        out = []
        for row in list(rows):
            events = conn.execute(
                select(incident_events.c.kind, incident_events.c.detail)
                .where(incident_events.c.incident_id == row["id"])
                .order_by(incident_events.c.id)
            ).all()
            out.append((row["status"], [(k, d or "") for k, d in events]))
        return out


def _window(centre: Centre, node: Node, start: datetime = START, hours: int = 2) -> str:
    with write_tx(centre.engine) as conn:
        return create_window(
            conn, start - timedelta(hours=1), "alice", Scope(agent_id=node.agent_id), start,
            start + timedelta(hours=hours), "vendor VNC session, ticket 4711", [RULE],
        )  # fmt: skip


def test_the_window_accepts_then_its_end_reopens_with_start_and_end_named(centre: Centre, node: Node) -> None:
    _send(node, [VNC])
    _round(centre, START - timedelta(minutes=10))  # before the window: an incident
    [(status, events)] = _timelines(centre)
    assert status == "open" and [k for k, _ in events] == ["detected"]

    window = _window(centre, node)
    _round(centre, START + timedelta(minutes=1))  # the window allows it: accepted and resolved
    [(status, events)] = _timelines(centre)
    span = _span(window, START, START + timedelta(hours=2))
    assert status == "resolved" and events[-1] == ("resolved", f"accepted: {span}")

    _round(centre, START + timedelta(hours=1))  # still inside: nothing new
    assert len(_timelines(centre)) == 1

    _round(centre, START + timedelta(hours=2, minutes=1))  # over, and the VNC port is still open
    status, events = _timelines(centre)[1]
    assert status == "open"
    assert [k for k, _ in events] == ["detected", "window_ended"]
    end = START + timedelta(hours=2)
    assert events[1][1] == f"{span} allowed this and ended at {end:%Y-%m-%d %H:%M} UTC; it is still so"


def test_a_cancelled_window_is_named_with_its_cancellation(centre: Centre, node: Node) -> None:
    window = _window(centre, node)
    _send(node, [VNC])
    _round(centre, START + timedelta(minutes=5))  # inside the window from the start: no incident
    assert _timelines(centre) == []
    with write_tx(centre.engine) as conn:
        cancel_window(conn, START + timedelta(minutes=30), "bob", window)
    _round(centre, START + timedelta(minutes=31))
    [(status, events)] = _timelines(centre)
    assert status == "open" and events[1][0] == "window_ended"
    cancelled = START + timedelta(minutes=30)
    assert events[1][1] == (
        f"{_span(window, START, START + timedelta(hours=2))} allowed this and was cancelled at "
        f"{cancelled:%Y-%m-%d %H:%M} UTC; it is still so"
    )


def test_a_deviation_that_starts_after_the_window_does_not_name_it(
    client: TestClient, centre: Centre, node: Node
) -> None:
    _window(centre, node, START - timedelta(hours=3), hours=1)  # over two hours ago
    _send(node, [VNC])
    _round(centre, datetime.now(timezone.utc) + timedelta(seconds=1))
    [(status, events)] = _timelines(centre)
    assert status == "open" and [k for k, _ in events] == ["detected"]
