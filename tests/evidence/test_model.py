"""The evidence record round-trips through JSON and rejects malformed input."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from evidence.model import Evidence, Gap, Outcome, Status, parse_utc, utc_iso

WHEN = datetime(2026, 11, 27, 12, 30, 5, tzinfo=timezone.utc)


def _record() -> Evidence:
    return Evidence(
        collector="power",
        collector_version="1",
        controls=("M01",),
        collected_at=WHEN,
        duration_ms=12.3456,
        status=Status.PARTIAL,
        observed={"ups": [{"name": "rack1", "charge_percent": 100}]},
        gaps=(Gap("apcupsd", "connection refused at 127.0.0.1:3551"),),
    )


def test_round_trip_through_json() -> None:
    data = json.loads(json.dumps(_record().to_dict()))
    assert data["collected_at"] == "2026-11-27T12:30:05Z"
    assert data["duration_ms"] == 12.346
    again = Evidence.from_dict(data)
    assert again.status is Status.PARTIAL
    assert again.gaps == (Gap("apcupsd", "connection refused at 127.0.0.1:3551"),)
    assert again.observed == {"ups": [{"name": "rack1", "charge_percent": 100}]}
    assert again.collected_at == WHEN


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d.pop("status"), "lacks field 'status'"),
        (lambda d: d.update(status="fine"), "'fine' is not a valid Status"),
        (lambda d: d.update(format=99), "unsupported evidence format 99"),
        (lambda d: d.update(observed=[1]), "observed must be an object"),
        (lambda d: d.update(collected_at="2026-11-27T12:30:05"), "time without zone"),
        (lambda d: d.update(gaps=[{"what": "x"}]), "lacks field 'reason'"),
    ],
)
def test_malformed_records_are_rejected(mutate: object, fragment: str) -> None:
    data = _record().to_dict()
    mutate(data)  # type: ignore[operator]
    with pytest.raises(ValueError, match=fragment):
        Evidence.from_dict(data)


def test_times_are_utc_with_z() -> None:
    cet = timezone(timedelta(hours=1))
    assert utc_iso(datetime(2026, 1, 1, 1, 0, tzinfo=cet)) == "2026-01-01T00:00:00Z"
    assert parse_utc("2026-01-01T01:00:00+01:00") == datetime(2026, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="naive"):
        utc_iso(datetime(2026, 1, 1))


def test_outcome_status_follows_gaps() -> None:
    assert Outcome.from_parts({"a": 1}, []).status is Status.COMPLETE
    assert Outcome.from_parts({"a": 1}, [Gap("b", "why")]).status is Status.PARTIAL
    absent = Outcome.not_present("no UPS software found")
    assert absent.status is Status.NOT_PRESENT and absent.gaps[0].reason == "no UPS software found"
