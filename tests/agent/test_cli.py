"""``tillsyn-agent collect`` as a sysadmin runs it: a real process, real output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "agent.yaml"
COLLECTORS = {"power", "disk_encryption", "antivirus", "backup", "ports"}


def _agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )


def test_collect_json_has_a_record_per_collector() -> None:
    result = _agent("--config", str(CONFIG), "collect", "--json")
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert {r["collector"] for r in records} == COLLECTORS
    for record in records:
        assert record["status"] in {"complete", "partial", "not_present", "error"}
        assert record["controls"], record["collector"]
        # Unknown is never passing: anything short of complete says what it could not see.
        if record["status"] in {"partial", "not_present"}:
            assert record["gaps"], record
        if record["status"] == "error":
            assert record["error"], record


def test_collect_table_names_every_collector() -> None:
    result = _agent("--config", str(CONFIG), "collect")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["CONTROLS", "COLLECTOR", "STATUS", "KEY", "FACTS"]
    shown = {line.split()[1] for line in lines[2:] if line and not line.startswith(" ")}
    assert shown == COLLECTORS


def test_only_picks_collectors() -> None:
    result = _agent("--config", str(CONFIG), "collect", "--json", "--only", "ports,power")
    assert result.returncode == 0, result.stderr
    assert [r["collector"] for r in json.loads(result.stdout)] == ["ports", "power"]


def test_unknown_collector_is_a_usage_error() -> None:
    result = _agent("--config", str(CONFIG), "collect", "--only", "powr")
    assert result.returncode == 2
    assert "--only powr: no such collector" in result.stderr
    assert result.stdout == ""


def test_broken_config_is_reported_and_nothing_runs(tmp_path: Path) -> None:
    bad = tmp_path / "agent.yaml"
    bad.write_text("collectors:\n  ports:\n    timeout: fast\n")
    result = _agent("--config", str(bad), "collect")
    assert result.returncode == 2
    assert f"{bad}: collectors.ports.timeout: expected a number" in result.stderr
    assert result.stdout == ""
