"""``tillsyn-agent check``: fresh evidence of a fixture tree against a small policy, as a real process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tests.centre_process import ROOT

POLICY = """\
version: 1
rules:
  - id: backup-configured
    title: A backup is configured
    controls: [M04]
    severity: high
    collector: backup
    check: {path: configured, op: ge, value: 1}
  - id: backup-readable
    title: Every backup can be read
    controls: [M04]
    severity: high
    collector: backup
    check: {path: backups, expect: all, test: {field: status, op: eq, value: ok}, show: [name, status, reason]}
  - id: backup-recent
    title: The last backup is at most two days old
    controls: [M04]
    severity: high
    collector: backup
    check: {path: backups, expect: all, test: {field: last_success_at, op: max_age, value: 2d},
            show: [name, last_success_at]}
"""
TITLES = ("A backup is configured", "Every backup can be read", "The last backup is at most two days old")
AGENT = """\
collectors:
  backup:
    restore_test_dir: /var/lib/tillsyn/restore-tests
    backups:
      - {name: db, type: marker, marker: /var/backup/done.json}
"""


def _check(tmp_path: Path, root: Path, *args: str, policy: str = POLICY) -> subprocess.CompletedProcess[str]:
    (tmp_path / "policy.yaml").write_text(policy)
    (tmp_path / "agent.yaml").write_text(AGENT)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "agent.cli",
            "--config",
            str(tmp_path / "agent.yaml"),
            "check",
            "--policy",
            str(tmp_path / "policy.yaml"),
            "--root",
            str(root),
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _marker(root: Path, finished: datetime) -> None:
    (root / "var" / "backup").mkdir(parents=True, exist_ok=True)
    stamp = finished.strftime("%Y-%m-%dT%H:%M:%SZ")
    (root / "var" / "backup" / "done.json").write_text(json.dumps({"finished_at": stamp, "result": "success"}))


def test_all_rules_pass_exit_0(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _marker(root, datetime.now(timezone.utc) - timedelta(hours=3))
    result = _check(tmp_path, root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("pass     M04") == 3
    assert f"3 of 3 rules pass ({tmp_path / 'policy.yaml'})" in result.stdout


def test_a_failing_rule_exit_1_with_observed_values(tmp_path: Path) -> None:
    root = tmp_path / "root"
    old = datetime.now(timezone.utc) - timedelta(days=9)
    _marker(root, old)
    result = _check(tmp_path, root)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("FAIL     M04      backup-recent")  # failing rules first
    # the sentence with the observed age, and no raw facts (JSON, None, []) for a person to decode
    assert lines[1].strip() == f"The last backup is at most two days old: not met by db, {old:%Y-%m-%dT%H:%M:%SZ}"
    assert not [line for line in lines if re.search(r'observed:|[{}\[\]"]|\bNone\b|\bFalse\b', line)], lines
    assert "2 of 3 rules pass" in result.stdout
    # No marker at all: the backup cannot be read; the reason is shown and nothing counts as passing.
    result = _check(tmp_path, tmp_path / "empty-root")
    assert result.returncode == 1
    assert "FAIL     M04      backup-readable" in result.stdout
    assert "done.json" in result.stdout
    assert "1 of 3 rules pass" in result.stdout


def test_json_lists_every_verdict(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _marker(root, datetime.now(timezone.utc) - timedelta(days=9))
    result = _check(tmp_path, root, "--json")
    assert result.returncode == 1
    verdicts = {v["rule"]: v for v in json.loads(result.stdout)}
    assert {r: v["verdict"] for r, v in verdicts.items()} == {
        "backup-configured": "passing",
        "backup-readable": "passing",
        "backup-recent": "failing",
    }
    assert verdicts["backup-recent"]["controls"] == ["M04"] and verdicts["backup-recent"]["severity"] == "high"
    assert verdicts["backup-configured"]["observed"] == 1


def test_broken_policy_exit_2_names_file_and_rule(tmp_path: Path) -> None:
    broken = POLICY.replace("op: max_age", "op: older_than")
    result = _check(tmp_path, tmp_path, policy=broken)
    assert result.returncode == 2
    assert str(tmp_path / "policy.yaml") in result.stderr
    assert "backup-recent" in result.stderr and "older_than" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    result = _check(tmp_path, tmp_path, policy="rules: [\n")
    assert result.returncode == 2 and "not valid YAML" in result.stderr
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent.cli",
            "--config",
            str(tmp_path / "agent.yaml"),
            "check",
            "--policy",
            str(tmp_path / "nope.yaml"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 2 and f"{tmp_path / 'nope.yaml'}: cannot read" in missing.stderr


def test_a_failing_dependent_says_which_failing_cause_suppresses_it(tmp_path: Path) -> None:
    """One cause, one page: check shows the dependent failing and which rule's failure explains it."""
    policy = (
        POLICY
        + """\
  - id: backup-two
    title: Two backups are configured
    controls: [M04]
    severity: low
    collector: backup
    depends_on: [backup-readable]
    say: {failing: "only {value|plural:backup} configured"}
    check: {path: configured, op: ge, value: 2}
"""
    )
    result = _check(tmp_path, tmp_path / "empty-root", policy=policy)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("FAIL     M04      backup-two"))
    assert lines[at + 1].strip() == "only 1 backup configured"
    assert lines[at + 2].strip() == "suppressed by backup-readable: its cause fails, so it opens no incident of its own"
    assert "suppressed by" not in "\n".join(lines[:at])  # backup-readable itself is the cause


def test_a_long_rule_id_keeps_its_title_apart(tmp_path: Path) -> None:
    """The shipped updates-newest-kernel-running is longer than the id column was: its title was glued on."""
    long_id = "backup-last-success-within-two-days-of-now"
    result = _check(tmp_path, tmp_path / "empty-root", policy=POLICY.replace("backup-recent", long_id))
    lines = [line for line in result.stdout.splitlines() if long_id in line]
    assert lines == [f"UNKNOWN  M04      {long_id}  The last backup is at most two days old"], result.stdout
    titles = {line.index(title) for line in result.stdout.splitlines() for title in TITLES if line.endswith(title)}
    assert len(titles) == 1, result.stdout  # every title starts in the same column
