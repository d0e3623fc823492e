"""M08's evidence in the auditor's export: what was erased, on whose request and when, listed for
the export's period and tenant even when the node's M08 finding stayed passing (its history has
no change to show then), and covered by ``export verify``."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any, Dict

import pytest

from central import audit
from central.db.engine import write_tx
from central.db.schema import finding_changes
from central.erasure import erase
from central.export.html import to_html
from central.export.model import Request, iso
from central.judging.own.rules import ERASURE
from central.runtime.service import Centre
from tests.central.export.helpers import cli
from tests.central.export.history_fleet import day, export

PASSING = "node's reports are kept 400 days, none older; the retention duty runs on time"


@pytest.fixture
def erased(centre: Centre, fleet: Dict[str, Any]) -> Dict[str, Any]:
    """acme's first node: M08 passing since day 5, request GDPR-17 made day 58 and carried out day
    70; acme's quiet node: a request made day -30, due day 60, never carried out; globex's node: a
    request of its own that acme's export must never show."""
    a, b, g = fleet["a"].agent_id, fleet["b"].agent_id, fleet["g"].agent_id
    with write_tx(centre.engine) as conn:
        conn.execute(
            finding_changes.insert().values(
                agent_id=a,
                rule_id=ERASURE.id,
                from_status=None,
                to_status="passing",
                at=day(5),
                controls=["M08"],
                message=PASSING,
            )
        )
        erase.request(conn, a, "GDPR-17", day(58), "cli:alice", day(58), "test")
        erase.erase(conn, a, "GDPR-17", "cli:bob", day(70), "test")
        erase.request(conn, b, "ACME-OLD", day(-30), "cli:alice", day(1), "test")
        erase.request(conn, g, "GLOBEX-SECRET", day(65), "cli:carol", day(65), "test")
    return {"a": a, "b": b, "g": g}


def test_a_request_carried_out_while_m08_passes_is_listed(centre: Centre, erased: Dict[str, Any]) -> None:
    data = export(centre, Request(day(90), start=day(60), tenant="acme"))
    node = next(n for n in data["nodes"] if n["id"] == erased["a"])
    m08 = next(r for r in node["rules"] if r["rule_id"] == ERASURE.id)
    assert (m08["status"], m08["changes"]) == ("passing", [])  # the rule's history says nothing of it
    rows = {r["reference"]: r for r in data["erasures"]}
    assert set(rows) == {"ACME-OLD", "GDPR-17"}  # globex's request is not acme's
    done = rows["GDPR-17"]
    assert done["agent_id"] == erased["a"] and done["hostname"] == node["hostname"]
    assert (done["requested_at"], done["due_at"], done["erased_at"]) == (iso(day(58)), iso(day(148)), iso(day(70)))
    assert (done["recorded_by"], done["erased_by"], done["status"]) == ("cli:alice", "cli:bob", "carried_out")
    assert done["reports"] == 0 and isinstance(done["erased_values"], int)
    assert done["message"] == f"carried out on {day(70):%Y-%m-%d}, 12 days after the request"
    assert rows["ACME-OLD"]["status"] == "overdue" and rows["ACME-OLD"]["erased_at"] is None
    assert rows["ACME-OLD"]["message"] == f"overdue since {day(60):%Y-%m-%d}, not carried out by {day(90):%Y-%m-%d}"
    # as of a moment before it was carried out, the same request is open
    before = {r["reference"]: r for r in export(centre, Request(day(65), tenant="acme"))["erasures"]}
    assert before["GDPR-17"]["message"] == f"open, due {day(148):%Y-%m-%d}"
    assert before["GDPR-17"]["erased_by"] is None and before["GDPR-17"]["erased_values"] is None
    # a period after it was carried out does not list it again
    later = export(centre, Request(day(95), start=day(71), tenant="acme"))["erasures"]
    assert [r["reference"] for r in later] == ["ACME-OLD"]
    everyone = export(centre, Request(day(90), start=day(60)))["erasures"]
    assert {r["reference"] for r in everyone} == {"ACME-OLD", "GDPR-17", "GLOBEX-SECRET"}


def test_html_lists_each_request_in_words(centre: Centre, erased: Dict[str, Any]) -> None:
    page = to_html(export(centre, Request(day(90), start=day(60), tenant="acme")))
    listed = page[page.index("<h2>Erasure requests (M08)</h2>") :]
    assert "<td>GDPR-17</td>" in listed and "cli:alice on " in listed and f"{iso(day(70))} by cli:bob" in listed
    assert f"carried out on {day(70):%Y-%m-%d}, 12 days after the request</td>" in listed
    assert f'<td class="overdue">overdue since {day(60):%Y-%m-%d}' in listed
    assert "GLOBEX" not in page and "cli:carol" not in page and "&#34;" not in listed


def test_verify_covers_the_erasure_requests(centre: Centre, erased: Dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "audit.json"
    span = ("--from", iso(day(60)) or "", "--to", iso(day(90)) or "")
    made = cli(centre, tmp_path, "export", "report", "--tenant", "acme", *span, "-o", str(path))
    assert made.returncode == 0, made.stderr
    assert "GDPR-17" in path.read_text() and "GLOBEX" not in path.read_text()
    ok = cli(centre, tmp_path, "export", "verify", str(path))
    assert ok.returncode == 0, ok.stdout
    data = json.loads(path.read_text())
    row = next(r for r in data["erasures"] if r["reference"] == "GDPR-17")
    row["erased_at"] = iso(day(61))
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(data))
    bad = cli(centre, tmp_path, "export", "verify", str(tampered))
    assert bad.returncode == 1, bad.stdout
    assert f'MISMATCH export.erasures[{row["id"]}].erased_at: export says "{iso(day(61))}"' in bad.stdout
    data["erasures"] = [r for r in data["erasures"] if r["reference"] != "GDPR-17"]
    tampered.write_text(json.dumps(data))
    dropped = cli(centre, tmp_path, "export", "verify", str(tampered))
    assert dropped.returncode == 1
    assert f"MISMATCH export.erasures[{row['id']}]: missing from the export" in dropped.stdout


def test_retention_rounds_by_day_counted_only_for_all_tenants(centre: Centre, fleet: Dict[str, Any]) -> None:
    """A round deletes for the whole centre: a tenant's export says that it ran, not how much it deleted."""
    at3 = day(61).replace(hour=3, minute=0)  # both rounds on one UTC day, whenever the test runs
    cut = {"reports_before": day(-300).isoformat(), "history_before": day(-700).isoformat()}
    with write_tx(centre.engine) as conn:
        for at, reports in ((day(20), 5), (at3, 7), (at3 + timedelta(hours=1), 2)):
            detail = {"reports": reports, "finding_changes": 0, **cut, "audit_before": day(-1900).isoformat()}
            audit.record(conn, at, "system:retention", "retention.run", None, detail, "duty")
    mine = export(centre, Request(day(90), start=day(60), tenant="acme"))["centre"]["retention_runs"]
    assert [(d["day"], d["rounds"], d["deleted"]) for d in mine] == [(f"{day(61):%Y-%m-%d}", 2, None)]
    assert mine[0]["reports_before"] == iso(day(-300))
    said = "2 rounds of the centre's retention deleted data between 03:00 and 04:00 UTC"
    assert mine[0]["message"].startswith(said) and "in all" not in mine[0]["message"]
    every = export(centre, Request(day(90), start=day(60)))["centre"]["retention_runs"]
    assert every[0]["deleted"] == {"reports": 9, "finding_changes": 0}
    assert every[0]["message"].endswith(f"reports received before {day(-300):%Y-%m-%d} (in all: 9 reports)")
    page = to_html(export(centre, Request(day(90), start=day(60), tenant="acme")))
    assert f"<td>{day(61):%Y-%m-%d}</td><td>{said}".replace("'", "&#39;") in page
    # a moment: the rounds of the day before it
    assert [d["day"] for d in export(centre, Request(day(20) + timedelta(hours=2)))["centre"]["retention_runs"]] == [
        f"{day(20):%Y-%m-%d}"
    ]
