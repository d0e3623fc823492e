"""M08: retention on time and nothing past its limit passes; a report past it, the duty overdue or an
erasure request past its deadline fails, each said with its value; unknown before retention first ran."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from central.judging.own.erasure import Request, judge
from evidence.rules import Verdict

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc)
ON_TIME = NOW - timedelta(minutes=8)
MARK = {"chain_index": 812, "pruned_at": datetime(2026, 12, 1, 3, 0, tzinfo=timezone.utc)}
DONE = Request("GDPR-17", datetime(2026, 12, 1, tzinfo=timezone.utc), datetime(2027, 3, 1, tzinfo=timezone.utc), NOW)


def test_retention_on_time_with_nothing_too_old_passes_naming_what_was_deleted_and_erased() -> None:
    result = judge("web1", 400, ON_TIME, None, MARK, [DONE], NOW)
    assert result.verdict is Verdict.PASSING
    assert result.message == (
        "node web1's reports are kept 400 days, none older; the retention duty runs on time; entries up to 812 "
        "deleted on 2026-12-01, their chain checkpoint kept; erasure request GDPR-17 carried out 2026-12-07 "
        "(made 2026-12-01)"
    )
    assert result.observed["centre_wide"] is False


def test_a_report_past_the_limit_fails_for_the_node() -> None:
    result = judge("web1", 30, ON_TIME, datetime(2026, 10, 1, tzinfo=timezone.utc), None, [], NOW)
    assert result.verdict is Verdict.FAILING
    assert result.message == "node web1 keeps a report received 2026-10-01, older than the 30 days retention"
    assert result.observed["oldest_report_past_limit"] == "2026-10-01T00:00:00+00:00"
    assert result.observed["centre_wide"] is False  # this node's own cause: its own incident


def test_the_retention_duty_overdue_fails_every_node_for_one_cause() -> None:
    result = judge("web1", 400, NOW - timedelta(minutes=61), None, None, [], NOW)
    assert result.verdict is Verdict.FAILING
    assert result.message == "the retention duty last ran 61 min ago (it runs every 10 min)"
    assert result.observed["retention_on_time"] is False and result.observed["centre_wide"] is True
    assert judge("web1", 400, NOW - timedelta(minutes=59), None, None, [], NOW).verdict is Verdict.PASSING


def test_an_erasure_request_past_its_deadline_fails_and_one_within_it_is_said_due() -> None:
    made = datetime(2026, 8, 1, 9, 0, tzinfo=timezone.utc)
    late = Request("OLD-1", made, made + timedelta(days=90), None)
    result = judge("web1", 400, ON_TIME, None, None, [late], NOW)
    assert result.verdict is Verdict.FAILING
    assert result.message == "erasure request OLD-1 of 2026-08-01 is not carried out; it was due 2026-10-30"
    waiting = Request("NEW-2", NOW - timedelta(days=3), NOW + timedelta(days=87), None)
    result = judge("web1", 400, ON_TIME, None, None, [waiting], NOW)
    assert result.verdict is Verdict.PASSING
    assert result.message.endswith("erasure request NEW-2 of 2026-12-04 is due 2027-03-04")


def test_before_retention_first_ran_it_is_unknown() -> None:
    result = judge("web1", 400, None, None, None, [], NOW)
    assert result.verdict is Verdict.UNKNOWN
    assert "the retention duty has not run yet" in result.message
