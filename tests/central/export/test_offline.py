"""``export verify --offline`` says what it could not check, on SQLite and PostgreSQL: every cited
report and head without evidence is a NOTE, the summary counts what was checked, an export none
of whose evidence can be checked does not pass, and a malformed report entry is a clear error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict

import pytest
from fastapi.testclient import TestClient

from central.export.build import control_summary
from central.runtime.service import Centre
from tests.central.conftest import Node, evidence_record, new_token
from tests.central.export.helpers import TELNET, cli


@pytest.fixture
def made(client: TestClient, centre: Centre, tmp_path: Path) -> Path:
    """acme's node fails the telnet rule; the export carries the evidence."""
    node = Node(client)
    node.enrol(new_token(centre, tenant="acme"))
    assert node.send(node.report(evidence_record("ports", {"sockets": [TELNET]}))).status_code == 200
    path = tmp_path / "audit.json"
    done = cli(centre, tmp_path, "export", "report", "--tenant", "acme", "--with-evidence", "-o", str(path))
    assert done.returncode == 0, done.stderr
    return path


def _changed(path: Path, change: Callable[[Dict[str, Any]], None]) -> Path:
    data = json.loads(path.read_text())
    change(data)
    out = path.with_name("changed-" + path.name)
    out.write_text(json.dumps(data))
    return out


def _stripped(data: Dict[str, Any]) -> None:
    """Every piece of evidence removed, as if retention had deleted it before the export, and the rule
    flipped to passing (what the export alone cannot refute; only its evidence could)."""
    node = data["nodes"][0]
    node["ledger"] = {"length": None, "head": None, "pruned": True}
    node["reports"] = [{"report_id": r["report_id"], "in_ledger": False} for r in node["reports"]]
    for rule in node["rules"]:
        if rule["status"] == "failing":
            rule["status"], rule["observed"] = "passing", []
    data["controls"] = control_summary(data["nodes"])


def test_an_export_with_its_evidence_removed_proves_nothing(centre: Centre, made: Path, tmp_path: Path) -> None:
    data = json.loads(made.read_text())
    node = data["nodes"][0]
    (report,) = node["reports"]

    stripped = cli(centre, tmp_path, "export", "verify", "--offline", str(_changed(made, _stripped)))
    assert stripped.returncode == 2, stripped.stdout
    assert stripped.stdout.splitlines() == [
        f"NOTE nodes[{node['id']}].reports[{report['report_id']}]: deleted by retention before the export was "
        "made (in_ledger: false): not checkable",
        f"NOTE nodes[{node['id']}].ledger: its head had been deleted by retention when the export was made "
        "(pruned): not checkable",
        f"{made.with_name('changed-audit.json')}: 1 node(s) checked offline: 0 of 1 cited report(s) and 0 of 1 "
        "ledger head(s) checked (signatures, entry hashes, links): nothing in it could be checked",
    ]
    honest = cli(centre, tmp_path, "export", "verify", "--offline", str(made))
    assert honest.returncode == 0, honest.stdout
    assert honest.stdout.endswith(
        "1 node(s) checked offline: 1 of 1 cited report(s) and 1 of 1 ledger head(s) checked "
        "(signatures, entry hashes, links): matches\n"
    )


def test_what_is_checked_and_what_is_not_are_counted(centre: Centre, made: Path, tmp_path: Path) -> None:
    def one_more_deleted(data: Dict[str, Any]) -> None:
        data["nodes"][0]["reports"].append({"report_id": "f" * 32, "in_ledger": False})

    partly = cli(centre, tmp_path, "export", "verify", "--offline", str(_changed(made, one_more_deleted)))
    assert partly.returncode == 0, partly.stdout
    assert f"NOTE nodes[{json.loads(made.read_text())['nodes'][0]['id']}].reports[{'f' * 32}]" in partly.stdout
    assert partly.stdout.endswith(
        ": 1 of 2 cited report(s) and 1 of 1 ledger head(s) checked (signatures, entry hashes, links): "
        "matches where checkable (1 NOTE(s))\n"
    )


def test_a_report_entry_without_its_chain_index_is_a_clear_error(centre: Centre, made: Path, tmp_path: Path) -> None:
    def no_index(data: Dict[str, Any]) -> None:
        del data["nodes"][0]["reports"][0]["chain_index"]

    data = json.loads(made.read_text())
    where = f"nodes[{data['nodes'][0]['id']}].reports[{data['nodes'][0]['reports'][0]['report_id']}]"
    refused = cli(centre, tmp_path, "export", "verify", "--offline", str(_changed(made, no_index)))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    assert f"{where}: no chain_index (a positive integer); the export is malformed" in refused.stderr
