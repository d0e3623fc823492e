"""M12: detected -> first notified and -> acknowledged, against the targets; never notified; channels
whose last delivery failed; the GDPR 72 h default for critical incidents."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Optional

import pytest

from central.judging.own.notification import Incident, judge, minutes, timings
from central.judging.own.settings import Measures
from evidence.rules import Verdict

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
SETTINGS = Measures()


def _incident(
    number: int,
    detected_min_ago: float,
    notified_after_min: Optional[float],
    severity: str = "high",
    acked_after_min: Optional[float] = None,
    held: bool = False,
) -> Incident:
    detected = NOW - timedelta(minutes=detected_min_ago)
    notified = None if notified_after_min is None else detected + timedelta(minutes=notified_after_min)
    acked = None if acked_after_min is None else detected + timedelta(minutes=acked_after_min)
    return Incident(number, "ports-no-plaintext-remote", severity, detected, notified, acked, held)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0, "0 s"), (40, "40 s"), (119, "119 s"), (37 * 60, "37 min"), (5.2 * 3600, "5.2 h"), (72 * 3600, "3.0 days")],
)
def test_durations_in_words(seconds: float, words: str) -> None:
    assert minutes(seconds) == words


def test_incidents_notified_in_time_pass_with_the_slowest() -> None:
    result = judge([_incident(1, 60, 0.5), _incident(2, 30, 3)], {}, 1, SETTINGS, NOW)
    assert result.verdict is Verdict.PASSING
    assert result.message == "2 incidents in the last 30 days; 2 notified within 15 min (the slowest after 3 min)"


def test_a_late_notification_fails_with_its_time_and_target() -> None:
    result = judge([_incident(42, 120, 37)], {}, 1, SETTINGS, NOW)
    assert result.verdict is Verdict.FAILING
    assert result.message == "incident 42 was first notified 37 min after detection (target 15 min)"
    [row] = result.observed["incidents"]
    assert row["notified_after_s"] == 37 * 60 and row["notify_target_s"] == 900


def test_never_notified_fails_once_the_target_passed_and_names_the_failed_channel() -> None:
    failed = {"hook": "connection refused"}
    waiting = judge([_incident(7, 10, None)], failed, 1, SETTINGS, NOW)
    assert waiting.verdict is Verdict.PASSING  # still within the target
    assert "incident 7 not notified yet, still within the target" in waiting.message
    late = judge([_incident(7, 20, None)], failed, 1, SETTINGS, NOW)
    assert late.verdict is Verdict.FAILING
    assert late.message == (
        "incident 7 has not been notified 20 min after detection (target 15 min); "
        "channel hook's last delivery failed (connection refused)"
    )


def test_critical_incidents_must_be_acknowledged_within_72_hours_by_default() -> None:
    assert SETTINGS.acknowledge_within_s == {"critical": 72 * 3600}
    open_critical = _incident(9, 73 * 60, 1, severity="critical")
    result = judge([open_critical], {}, 1, SETTINGS, NOW)
    assert result.verdict is Verdict.FAILING
    assert result.message == "incident 9 (critical) is not acknowledged 3.0 days after detection (target 3.0 days)"
    acked_late = _incident(10, 80 * 60, 1, severity="critical", acked_after_min=74 * 60)
    assert "was acknowledged 3.1 days after detection" in judge([acked_late], {}, 1, SETTINGS, NOW).message
    high = _incident(11, 80 * 60, 1, severity="high")  # no acknowledgement target for high by default
    assert judge([high], {}, 1, SETTINGS, NOW).verdict is Verdict.PASSING


def test_held_incidents_are_not_late() -> None:
    row = timings(_incident(5, 120, None, held=True), SETTINGS, NOW)
    assert row["missed"] == []
    assert judge([_incident(5, 120, None, held=True)], {}, 1, SETTINGS, NOW).message.endswith(
        "1 held by a maintenance window"
    )


def test_no_incident_without_any_channel_is_unknown_and_with_one_passes() -> None:
    nothing = judge([], {}, 0, SETTINGS, NOW)
    assert nothing.verdict is Verdict.UNKNOWN
    assert nothing.message == "no incident in the last 30 days, and no alert channel is configured to notify one"
    ready = judge([], {"mail": "550 mailbox unavailable"}, 1, SETTINGS, NOW)
    assert ready.verdict is Verdict.PASSING
    assert (
        ready.message
        == "no incident in the last 30 days; channel mail's last delivery failed (550 mailbox unavailable)"
    )


def test_targets_are_checked_when_central_yaml_is_read() -> None:
    with pytest.raises(ValueError, match="'urgent' is not a severity"):
        Measures(acknowledge_within_s={"urgent": 3600})
    with pytest.raises(ValueError, match="under 60 s"):
        Measures(acknowledge_within_s={"critical": 5})
