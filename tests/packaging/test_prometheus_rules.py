"""packaging/prometheus/tillsyn.rules.yml: valid for Debian's promtool, and each alert fires on
synthetic series when it should and not before (tests/packaging/prometheus/tillsyn.rules.test.yml)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "packaging" / "prometheus" / "tillsyn.rules.yml"
UNIT_TESTS = Path(__file__).parent / "prometheus" / "tillsyn.rules.test.yml"
ALERTS = {
    "TillsynCentreDown",
    "TillsynCentreAbsent",
    "TillsynDutiesStalled",
    "TillsynOutboxStuck",
    "TillsynChannelFailing",
    "TillsynNotificationsFailing",
    "TillsynEvaluationBacklogGrowing",
    "TillsynManyNodesSilent",
}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("promtool"), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=UNIT_TESTS.parent,
    )


def test_promtool_accepts_the_rules() -> None:
    done = _promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in done.stdout, done.stdout


def test_every_alert_has_a_runbook_and_is_tested() -> None:
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} == ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]
    tested = {
        case["alertname"]
        for group in yaml.safe_load(UNIT_TESTS.read_text())["tests"]
        for case in group["alert_rule_test"]
        if case.get("exp_alerts")
    }
    assert tested == ALERTS, f"alerts never shown firing in {UNIT_TESTS.name}: {sorted(ALERTS - tested)}"


def test_the_alerts_fire_on_synthetic_series_when_they_should() -> None:
    done = _promtool("test", "rules", UNIT_TESTS.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout, done.stdout
