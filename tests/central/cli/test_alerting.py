"""``tillsyn-central window|waiver|incident|audit`` as processes: changes recorded with who."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]


def _cli(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILLSYN_")}
    env["TILLSYN_STATE_DIR"] = str(state)
    return subprocess.run(
        [sys.executable, "-m", "central.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_windows_waivers_acks_and_the_audit_trail(tmp_path: Path) -> None:
    state = tmp_path / "state"
    made = _cli(
        state,
        "window",
        "create",
        "--group",
        "web",
        "--for",
        "2h",
        "--reason",
        "UPS battery swap",
        "--allows",
        "ports-no-remote-service",
        "--by",
        "alice",
    )
    assert made.returncode == 0, made.stderr
    window_id = made.stdout.strip()
    [window] = _json(_cli(state, "window", "list"))
    assert (window["id"], window["group_name"], window["allows"], window["created_by"]) == (
        window_id,
        "web",
        ["ports-no-remote-service"],
        "alice",
    )

    waiver = _cli(
        state,
        "waiver",
        "create",
        "--tenant",
        "acme",
        "--rule",
        "backup-separate",
        "--justification",
        "replica in the same rack until Q3",
        "--approver",
        "ciso",
        "--for",
        "30d",
    )
    assert waiver.returncode == 0, waiver.stderr
    assert _cli(state, "waiver", "revoke", waiver.stdout.strip()).returncode == 0
    again = _cli(state, "waiver", "revoke", waiver.stdout.strip())
    assert again.returncode == 2 and "no active waiver" in again.stderr
    assert _cli(state, "window", "cancel", window_id, "--by", "bob").returncode == 0

    trail = _json(_cli(state, "audit"))
    assert [
        (e["action"], e["actor"].split(":")[0] if e["actor"].startswith("cli:") else e["actor"])
        for e in reversed(trail)
    ] == [("window.create", "alice"), ("waiver.create", "cli"), ("waiver.revoke", "cli"), ("window.cancel", "bob")]


def test_refusals_exit_2_and_change_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    cases = [
        (("incident", "ack", "7"), "no incident 7"),
        (("window", "create", "--agent", "nope", "--for", "1h", "--reason", "x"), "no node 'nope'"),
        (("window", "create", "--for", "1h", "--reason", "x"), "name a node (agent_id), a group or a tenant"),
        (("window", "create", "--group", "g", "--for", "1h", "--reason", " "), "say why"),
        (
            (
                "waiver",
                "create",
                "--group",
                "g",
                "--rule",
                "r",
                "--justification",
                "j",
                "--approver",
                "a",
                "--expires",
                "2001-01-01T00:00:00Z",
            ),
            "must expire in the future",
        ),
    ]
    for args, message in cases:
        result = _cli(state, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
    bad_time = _cli(state, "window", "create", "--group", "g", "--end", "tomorrow", "--reason", "x")
    assert bad_time.returncode == 2 and "use e.g. 2026-11-27T22:00:00Z" in bad_time.stderr
    assert _json(_cli(state, "audit")) == []
    assert _json(_cli(state, "window", "list")) == []
