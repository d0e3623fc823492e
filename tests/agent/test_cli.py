"""``tillsyn-agent collect`` as a sysadmin runs it: a real process, real output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from collectors import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "agent.yaml"
COLLECTORS = set(REGISTRY)


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


def test_unprivileged_collect_reports_what_it_cannot_see() -> None:
    """As user nobody: every collector still reports, and says what root would have shown."""
    import os

    from tests.conftest import require_root

    require_root("to drop to user nobody")
    # The interpreter may live where nobody cannot read (a home directory): import every module
    # a collection needs while still root, by running one in this process first.
    from agent.cli import main

    with open(os.devnull, "w") as devnull:
        saved, sys.stdout = sys.stdout, devnull
        try:
            main(["--config", str(CONFIG), "collect", "--json"])
        finally:
            sys.stdout = saved
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: become nobody, run the CLI in-process, exit with its status
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            sys.stdout = os.fdopen(write_fd, "w")  # pytest's capture is no file descriptor
            code = main(["--config", str(CONFIG), "collect", "--json"])
            sys.stdout.flush()
        except BaseException:  # noqa: BLE001  any failure is the child's exit status
            import traceback

            traceback.print_exc()
            code = 99
        os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        output = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    records = {r["collector"]: r for r in json.loads(output)}
    assert set(records) == COLLECTORS
    reasons = " ".join(g["reason"] for r in records.values() for g in r["gaps"])
    assert "not root" in reasons or "permission denied" in reasons
    # Nothing unseen is passed off as complete: a gap always comes with a non-complete status.
    for record in records.values():
        assert (record["status"] == "complete") == (not record["gaps"]), record["collector"]
