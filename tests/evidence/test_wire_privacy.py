"""The privacy setting in reports and heartbeats (M13): optional both ways, so an older agent's
messages still parse (no setting: None) and an older centre, which reads only the fields it
knows, still reads a newer agent's; a malformed setting is refused with the field named."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from evidence.wire import Heartbeat, Privacy, Report, WireError, canonical, parse_heartbeat, parse_report

AT = datetime(2026, 12, 7, 1, 0, tzinfo=timezone.utc)


def test_a_report_and_a_heartbeat_carry_the_setting() -> None:
    privacy = Privacy(True, "0123456789ab")
    report = parse_report(canonical(Report("agent-0001", "report-0001", 1, AT, "0.1.0", (), privacy).to_dict()))
    assert report.privacy == privacy
    beat = parse_heartbeat(canonical(Heartbeat("agent-0001", 1, AT, 0, (), Privacy(False)).to_dict()))
    assert beat.privacy == Privacy(False, None)


def test_older_agents_messages_have_none() -> None:
    body = canonical(Heartbeat("agent-0001", 1, AT, 0).to_dict())
    assert b"privacy" not in body  # byte for byte what an older agent sends and signs
    assert parse_heartbeat(body).privacy is None
    assert parse_report(canonical(Report("agent-0001", "report-0001", 1, AT, "0.0.9", ()).to_dict())).privacy is None


@pytest.mark.parametrize(
    ("privacy", "error"),
    [
        ("on", "heartbeat.health.privacy: expected dict"),
        ({}, "heartbeat.health.privacy: missing field 'pseudonymise'"),
        ({"pseudonymise": 1}, "heartbeat.health.privacy.pseudonymise: expected bool"),
        ({"pseudonymise": True, "key_id": "ZZZ"}, "heartbeat.health.privacy.key_id: must be 12 lower-case hex"),
    ],
)
def test_a_malformed_setting_is_refused(privacy: object, error: str) -> None:
    data = Heartbeat("agent-0001", 1, AT, 0).to_dict()
    data["health"]["privacy"] = privacy
    with pytest.raises(WireError, match=error.replace("(", r"\(").replace(")", r"\)")):
        parse_heartbeat(json.dumps(data).encode())
