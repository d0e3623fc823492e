"""A storm of writes to watched critical files (issue #18): the real daemon, with real inotify,
sends a bounded number of file_integrity reports, each summarising its changes, never a report
per write, and loses no change (its baseline ends at the files' last state)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import List

from tests.agent.daemon_helpers import AgentDaemon, agent_yaml, wait_for
from tests.centre_process import CentreProcess

STORM_S = 4.0
FILES = 40


def test_a_storm_of_writes_is_a_few_summarised_reports(
    centre: CentreProcess, tmp_path: Path, daemons: List[AgentDaemon]
) -> None:
    work = tmp_path / "a"
    watched = work / "sudoers.d"
    watched.mkdir(parents=True)
    (watched / "README").write_text("# drop-ins\n")
    (watched / "deeper").mkdir()
    files = f"  file_integrity: {{interval: 3600, paths: [{watched}], max_listed: 5}}"
    config = agent_yaml(work, ports=None).replace("  file_integrity: {enabled: false}", files)
    assert files in config
    daemon = AgentDaemon(work, centre, config)
    daemons.append(daemon.start())
    wait_for("the first round (the baseline)", lambda: daemon.runs_of("file_integrity") == 1, 30, daemon)
    time.sleep(1.5)  # the watch is set up after the first round

    # A program rewriting drop-ins without pause: hundreds of writes in a few seconds.
    writes, started = 0, time.monotonic()
    while time.monotonic() - started < STORM_S:
        (watched / f"drop-{writes % FILES:02d}").write_text(f"# write {writes}\n")
        writes += 1
        time.sleep(0.005)
    wait_for("the storm's last change reported", lambda: _baseline_has_last_state(daemon, watched), 20, daemon)
    time.sleep(2.5)  # a late report would show here
    runs = daemon.runs_of("file_integrity") - 1
    assert writes >= 200, writes
    # at most one round per second of debounce while the storm lasts, plus the one after it
    assert 2 <= runs <= STORM_S + 3, (runs, writes, daemon.rounds())

    reports = wait_for("the storm's reports stored", lambda: len(daemon.stored()) == runs + 1 and daemon.stored(), 20)
    seen = [{e["collector"]: e for e in r["report"]["evidence"]}["file_integrity"]["observed"] for r in reports[1:]]
    assert all(len(o["changes"]) <= 5 for o in seen), seen
    big = [o for o in seen if o["changes_total"] > 5]
    assert big and all(o["summarised"] and sum(o["summary"]["by_change"].values()) == o["changes_total"] for o in big)
    assert (
        sum(o["summary"]["by_change"].get("created", 0) for o in big)
        + sum(1 for o in seen if o not in big for c in o["changes"] if c["change"] == "created")
        == FILES
    ), seen  # every drop-in's creation is counted once, in the report after it

    # a file in a subdirectory of the watched directory is watched too (file_integrity hashes it)
    before = daemon.runs_of("file_integrity")
    (watched / "deeper" / "limits.conf").write_text("* hard core 0\n")
    wait_for("a run for the subdirectory's file", lambda: daemon.runs_of("file_integrity") > before, 10, daemon)
    assert daemon.stop() == 0


def _baseline_has_last_state(daemon: AgentDaemon, watched: Path) -> bool:
    try:
        files = json.loads((daemon.state / "file_integrity" / "baseline.json").read_text())["files"]
    except (OSError, ValueError, KeyError):
        return False
    for path in (p for p in watched.iterdir() if p.is_file()):
        want = hashlib.sha256(path.read_bytes()).hexdigest()
        if files.get(str(path), {}).get("sha256") != want:
            return False
    return True
