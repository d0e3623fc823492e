"""The auditor's export on SQLite and PostgreSQL: statuses rebuilt at a moment and over a period,
the tenant filter, JSON/CSV/HTML/PDF, and verification (against the ledger and offline) that
catches a tampered export or a tampered ledger."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path
from typing import Any, Dict

from sqlalchemy import select, update

from central.db.engine import write_tx
from central.db.schema import reports
from central.export.html import to_html
from central.export.model import FORMAT, Request, iso
from central.export.render import CSV_COLUMNS, to_csv
from central.runtime.service import Centre
from tests.central.conftest import cli_env, run_cli
from tests.central.export.history_fleet import HOSTILE, OBSERVED, RULE, day, export


def rule(data: Dict[str, Any], agent_id: str, rule_id: str = RULE) -> Dict[str, Any]:
    node = next(n for n in data["nodes"] if n["id"] == agent_id)
    found: Dict[str, Any] = next(r for r in node["rules"] if r["rule_id"] == rule_id)
    return found


def ledger_row(centre: Centre, agent_id: str, index: int) -> Any:
    with centre.engine.connect() as conn:
        return conn.execute(select(reports).where(reports.c.agent_id == agent_id, reports.c.chain_index == index)).one()


def test_status_at_a_moment_is_the_last_change_before_it(centre: Centre, fleet: Dict[str, Any]) -> None:
    a = fleet["a"].agent_id
    assert rule(export(centre, Request(day(15), tenant="acme")), a)["status"] == "stale"
    failing = export(centre, Request(day(45), tenant="acme"))
    first = ledger_row(centre, a, 1)
    assert rule(failing, a) == {
        "rule_id": RULE,
        "controls": ["M07"],
        "status": "failing",
        "since": iso(day(30)),
        "message": "<b>inetd</b> listens on 0.0.0.0:23/tcp (telnet, plaintext)",  # the sentence of that status
        "observed": OBSERVED,
        "report_id": fleet["bad"]["report_id"],
        "accepted_by": [f"waiver:{fleet['waiver']}"],
    }
    node = next(n for n in failing["nodes"] if n["id"] == a)
    assert node["ledger"] == {"length": 1, "head": first.entry_hash, "pruned": False}
    assert node["reports"] == [
        {
            "report_id": first.report_id,
            "seq": 1,
            "chain_index": 1,
            "prev_hash": "0" * 64,
            "entry_hash": first.entry_hash,
            "body_sha256": first.body_sha256,
            "collected_at": iso(day(30)),
            "received_at": iso(day(30)),
            "in_ledger": True,
        }
    ]
    assert rule(export(centre, Request(day(75), tenant="acme")), a)["status"] == "passing"
    assert rule(export(centre, Request(day(75), tenant="acme")), a)["observed"] == []
    assert [n["id"] for n in export(centre, Request(day(-1), tenant="acme"))["nodes"]] == []  # not enrolled yet

    m07 = next(c for c in failing["controls"] if c["id"] == "M07")
    assert m07["counts"] == {"failing": 0, "unknown": 0, "stale": 1, "passing": 0, "accepted": 1, "not_evaluated": 0}
    assert failing["format"] == FORMAT and [c["id"] for c in failing["controls"]] == [f"M{i:02}" for i in range(1, 14)]


def test_a_period_gives_start_end_and_every_change_between(centre: Centre, fleet: Dict[str, Any]) -> None:
    a = fleet["a"].agent_id
    data = export(centre, Request(day(45), day(15), tenant="acme"))
    entry = rule(data, a)
    assert (entry["status_at_start"], entry["status"]) == ("stale", "failing")
    assert entry["changes"] == [
        {
            "at": iso(day(30)),
            "from": "stale",
            "to": "failing",
            "message": "<b>inetd</b> listens on 0.0.0.0:23/tcp (telnet, plaintext)",
            "observed": OBSERVED,
            "report_id": fleet["bad"]["report_id"],
        }
    ]
    node = next(n for n in data["nodes"] if n["id"] == a)
    assert node["ledger_at_start"] == {"length": 0, "head": "0" * 64, "pruned": False}
    assert [w["id"] for w in data["waivers"]] == [fleet["waiver"]]
    assert [w["id"] for w in data["maintenance_windows"]] == [fleet["window"]]
    (incident,) = data["incidents"]
    assert (incident["agent_id"], incident["status"], incident["acknowledged_by"]) == (a, "open", "alice")
    assert [(e["at"], e["kind"]) for e in incident["timeline"]] == [
        (iso(day(30)), "detected"),
        (iso(day(31)), "acknowledged"),
    ]
    whole = export(centre, Request(day(90), day(15), tenant="acme"))
    assert [c["to"] for c in rule(whole, a)["changes"]] == ["failing", "passing"]
    assert whole["incidents"][0]["status"] == "resolved" and len(whole["incidents"][0]["timeline"]) == 3
    assert [w["id"] for w in export(centre, Request(day(90), day(55), tenant="acme"))["waivers"]] == []


def test_another_tenants_node_never_appears(centre: Centre, fleet: Dict[str, Any]) -> None:
    g = fleet["g"]
    data = export(centre, Request(day(90), day(1), tenant="acme"))
    outputs = [json.dumps(data), to_csv(data), to_html(data)]
    for text in outputs:
        assert g.agent_id not in text and "globex" not in text
    assert {n["hostname"] for n in data["nodes"]} == {HOSTILE, "quiet.acme.example"}
    everyone = export(centre, Request(day(90), day(1)))
    assert g.agent_id in {n["id"] for n in everyone["nodes"]} and len(everyone["incidents"]) == 2


def test_csv_has_one_plain_row_per_node_and_rule(centre: Centre, fleet: Dict[str, Any]) -> None:
    data = export(centre, Request(day(45), tenant="acme"))
    rows = list(csv.DictReader(io.StringIO(to_csv(data))))
    assert len(rows) == 2 * len(centre.policy.policy.rules) and tuple(rows[0]) == CSV_COLUMNS
    first = ledger_row(centre, fleet["a"].agent_id, 1)
    (row,) = [r for r in rows if r["agent_id"] == fleet["a"].agent_id and r["rule_id"] == RULE]
    assert row == {
        "tenant": "acme",
        "agent_id": fleet["a"].agent_id,
        "hostname": HOSTILE,
        "rule_id": RULE,
        "controls": "M07",
        "status": "failing",
        "since": iso(day(30)),
        "message": "<b>inetd</b> listens on 0.0.0.0:23/tcp (telnet, plaintext)",
        "observed": json.dumps(OBSERVED, sort_keys=True, separators=(",", ":")),
        "accepted_by": f"waiver:{fleet['waiver']}",
        "report_id": fleet["bad"]["report_id"],
        "chain_index": "1",
        "entry_hash": first.entry_hash,
        "body_sha256": first.body_sha256,
    }
    quiet = [r for r in rows if r["hostname"] == "quiet.acme.example"]
    assert {r["status"] for r in quiet} == {"stale"} and {r["report_id"] for r in quiet} == {""}


def test_html_escapes_everything_from_nodes(centre: Centre, fleet: Dict[str, Any], tmp_path: Path) -> None:
    page = to_html(export(centre, Request(day(45), tenant="acme")))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;b&gt;inetd&lt;/b&gt;" in page and "telnet for a &lt;legacy&gt; device" in page
    assert "<h2>M07 External connections</h2>" in page
    # What a browser makes of it: no script element, no img element, the name shown as text.
    (tmp_path / "e.html").write_text(page)
    dom = subprocess.run(
        [
            "/usr/bin/chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'p'}",
            "--dump-dom",
            (tmp_path / "e.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "<h3>&lt;script&gt;alert(1)&lt;/script&gt;</h3>" in dom and "<script" not in dom and "<img" not in dom


def _cli(centre: Centre, tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    done: subprocess.CompletedProcess[str] = run_cli(cli_env(tmp_path, centre.config.db_url), list(argv))[0]
    return done


def test_pdf_through_chromium_and_a_clear_error_without_it(
    centre: Centre, fleet: Dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "audit.pdf"
    made = _cli(
        centre,
        tmp_path,
        "export",
        "report",
        "--tenant",
        "acme",
        "--at",
        iso(day(45)) or "",
        "--format",
        "pdf",
        "-o",
        str(out),
    )
    assert made.returncode == 0, made.stderr
    assert out.read_bytes().startswith(b"%PDF") and out.stat().st_size > 5000
    missing = _cli(
        centre,
        tmp_path,
        "export",
        "report",
        "--all-tenants",
        "--format",
        "pdf",
        "-o",
        str(tmp_path / "x.pdf"),
        "--chromium",
        "/nonexistent/chromium",
    )
    assert missing.returncode == 2 and not (tmp_path / "x.pdf").exists()
    assert "PDF needs headless Chromium and none was found at '/nonexistent/chromium'" in missing.stderr


def _tamper(path: Path, change: Any) -> Path:
    data = json.loads(path.read_text())
    change(data)
    out = path.with_name("tampered-" + path.name)
    out.write_text(json.dumps(data))
    return out


def test_verify_an_export_against_the_ledger(centre: Centre, fleet: Dict[str, Any], tmp_path: Path) -> None:
    a = fleet["a"].agent_id
    path = tmp_path / "audit.json"
    made = _cli(
        centre,
        tmp_path,
        "export",
        "report",
        "--tenant",
        "acme",
        "--from",
        iso(day(1)) or "",
        "--to",
        iso(day(90)) or "",
        "-o",
        str(path),
    )
    assert made.returncode == 0, made.stderr
    ok = _cli(centre, tmp_path, "export", "verify", str(path))
    assert (ok.returncode, ok.stdout) == (0, f"{path}: 2 node(s) checked against the ledger: matches\n")

    def observed(data: Dict[str, Any]) -> None:
        rule(data, a)["changes"][0]["observed"][0]["port"] = 22

    def hashed(data: Dict[str, Any]) -> None:
        next(n for n in data["nodes"] if n["id"] == a)["reports"][0]["entry_hash"] = "f" * 64

    def dropped(data: Dict[str, Any]) -> None:
        data["nodes"] = [n for n in data["nodes"] if n["id"] != a]

    def linked(data: Dict[str, Any]) -> None:  # the derived previous hash is checked like the stored ones
        next(n for n in data["nodes"] if n["id"] == a)["reports"][0]["prev_hash"] = "e" * 64

    expected = {
        observed: f"MISMATCH nodes[{a}].rules[{RULE}].changes[{fleet['bad']['report_id']}].observed[0].port: "
        "export says 22, database says 23",
        hashed: f'MISMATCH nodes[{a}].reports[{fleet["bad"]["report_id"]}].entry_hash: export says "{"f" * 64}"',
        dropped: f"MISMATCH nodes[{a}]: node '{HOSTILE}' of this scope is missing",
        linked: f'MISMATCH nodes[{a}].reports[{fleet["bad"]["report_id"]}].prev_hash: export says "{"e" * 64}"',
    }
    for change, line in expected.items():
        bad = _cli(centre, tmp_path, "export", "verify", str(_tamper(path, change)))
        assert bad.returncode == 1 and line in bad.stdout, bad.stdout
    # A ledger changed after the export: the entry no longer matches and the chain is broken.
    with write_tx(centre.engine) as conn:
        conn.execute(
            update(reports).where(reports.c.agent_id == a, reports.c.chain_index == 2).values(body_sha256="0" * 64)
        )
    broken = _cli(centre, tmp_path, "export", "verify", str(path))
    assert broken.returncode == 1
    assert f"MISMATCH ledger {a} entry 2: body does not match its recorded hash (changed)" in broken.stdout


def test_verify_offline_with_evidence(centre: Centre, fleet: Dict[str, Any], tmp_path: Path) -> None:
    a = fleet["a"].agent_id
    path = tmp_path / "audit.json"
    made = _cli(
        centre,
        tmp_path,
        "export",
        "report",
        "--tenant",
        "acme",
        "--from",
        iso(day(1)) or "",
        "--to",
        iso(day(90)) or "",
        "--with-evidence",
        "-o",
        str(path),
    )
    assert made.returncode == 0, made.stderr
    node = next(n for n in json.loads(path.read_text())["nodes"] if n["id"] == a)
    assert [r["chain_index"] for r in node["reports"]] == [1, 2] and node["ledger"]["length"] == 2
    assert [r["prev_hash"] for r in node["reports"]] == ["0" * 64, node["reports"][0]["entry_hash"]]
    ok = _cli(centre, tmp_path, "export", "verify", "--offline", str(path))
    assert ok.returncode == 0 and ok.stdout.endswith(
        "checked offline: 2 of 2 cited report(s) and 4 of 4 ledger head(s) checked "
        "(signatures, entry hashes, links): matches\n"
    )
    online = _cli(centre, tmp_path, "export", "verify", str(path))
    assert online.returncode == 0, online.stdout

    def body(data: Dict[str, Any]) -> None:
        import base64

        report = next(n for n in data["nodes"] if n["id"] == a)["reports"][0]
        raw = base64.b64decode(report["body"]).replace(b'"port":23', b'"port":22')
        report["body"] = base64.b64encode(raw).decode()

    def head(data: Dict[str, Any]) -> None:
        next(n for n in data["nodes"] if n["id"] == a)["ledger"]["head"] = "e" * 64

    def summary(data: Dict[str, Any]) -> None:
        data["controls"][6]["counts"]["passing"] = 99

    def link(data: Dict[str, Any]) -> None:
        next(n for n in data["nodes"] if n["id"] == a)["reports"][1]["prev_hash"] = "e" * 64

    where = f"nodes[{a}].reports[{fleet['bad']['report_id']}]"
    # M07 counts what the fleet's evidence makes of every shipped M07 rule; the tampered 99 must be
    # refused against whatever the untampered export says
    m07_passing = json.loads(path.read_text())["controls"][6]["counts"]["passing"]
    assert m07_passing != 99
    expected = {
        body: f"MISMATCH {where}: signature: signature does not match the body and the node's key",
        head: f"MISMATCH nodes[{a}].ledger.head: is not entry 2's hash",
        summary: f"MISMATCH export.controls[M07].counts.passing: export says 99, recomputed summary says {m07_passing}",
        link: f"MISMATCH nodes[{a}].reports[{node['reports'][1]['report_id']}]: previous-hash link does not match "
        "the entry before it",
    }
    for change, line in expected.items():
        bad = _cli(centre, tmp_path, "export", "verify", "--offline", str(_tamper(path, change)))
        assert bad.returncode == 1 and line in bad.stdout, bad.stdout
    plain = tmp_path / "plain.json"
    assert _cli(centre, tmp_path, "export", "report", "--all-tenants", "-o", str(plain)).returncode == 0
    refused = _cli(centre, tmp_path, "export", "verify", "--offline", str(plain))
    assert refused.returncode == 2 and "make it with --with-evidence" in refused.stderr
