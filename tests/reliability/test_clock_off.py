"""A node's clock several minutes off, ahead and behind (a real agent under libfaketime).

Beside it a reference node with the true clock, the same collectors (ports, power, a marker
backup whose finish time the node's own clock writes).  What the centre does, by how far the
node's clock is off (docs/reliability.md):
- behind 7 min, ahead 3 min: stored (collected_at as the node's clock says), heartbeats accepted,
  every finding as the reference node's;
- ahead 8 min, beyond ``limits.clock_skew_s`` (300 s): reports and heartbeats refused ``400 clock``;
  the reports wait in the spool, nothing is stored, nothing is passing;
- ahead 12 min with ``clock_skew_s: 900``: stored, and the backup's finish time, more than 10 min in
  the future, leaves ``backup-recent`` unknown where the reference node's passes.
"""

from __future__ import annotations

import glob
import json
import time
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any, Dict

import pytest
import requests
import yaml

from tests.centre_process import ROOT, CentreProcess
from tests.conftest import require_tool
from tests.e2e.harness import (
    AgentProcess,
    Fleet,
    agent_yaml,
    assert_exactly_once,
    ledger,
    stored_seqs,
    wait_until,
)
from tests.reliability.settle import stop_drained

COLLECTORS = ("ports", "power", "backup")
_RULES = {
    rule["id"]
    for rule in yaml.safe_load((ROOT / "config" / "policy.yaml").read_text())["rules"]
    if rule.get("collector") in COLLECTORS
}
"""The shipped policy's rules on those collectors (the centre's own measures judge other things)."""


def _libfaketime() -> str:
    """Debian's libfaketime (package faketime): preloaded into the node's processes themselves, so
    that SIGTERM reaches the daemon (the ``faketime`` wrapper would stand between)."""
    require_tool("faketime")
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    assert found, "faketime is installed but libfaketime.so.1 is not under /usr/lib/*/faketime/"
    return found[0]


class SkewedAgent(AgentProcess):
    """Every command of this node (enrol, the daemon) runs with its wall clock ``offset_s`` off."""

    def __init__(self, base: Path, config_text: str, offset_s: int) -> None:
        super().__init__(base, config_text)
        self.offset_s = offset_s
        self.env["LD_PRELOAD"] = _libfaketime()
        self.env["FAKETIME"] = f"{offset_s:+d}s"
        self.env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"  # the daemon's timers keep the true monotonic clock


def _config(work: Path) -> str:
    backup = (
        "  backup:\n    interval: 10\n"
        f"    restore_test_dir: {work}\n"
        f"    backups:\n      - {{name: nightly, type: marker, marker: {work / 'marker.json'}}}\n"
    )
    return agent_yaml(extra=backup)


def _marker(work: Path, offset_s: int) -> None:
    """A successful backup that finished now, by the node's own clock."""
    work.mkdir(parents=True, exist_ok=True)
    at = datetime.now(timezone.utc) + timedelta(seconds=offset_s)
    (work / "marker.json").write_text(
        json.dumps({"finished_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "result": "success"})
    )


def _findings(centre: CentreProcess, key: Dict[str, str], agent: AgentProcess) -> Dict[str, Dict[str, Any]]:
    """The node's findings of the policy's rules on the three collectors, by rule id."""
    answer = requests.get(f"{centre.url}/api/v1/nodes/{agent.agent_id}", headers=key, timeout=10)
    answer.raise_for_status()
    return {f["rule_id"]: f for f in answer.json()["findings_detail"] if f["rule_id"] in _RULES}


def _judged(centre: CentreProcess) -> bool:
    return bool(requests.get(centre.url + "/healthz", timeout=10).json().get("evaluation_backlog") == 0)


@pytest.mark.parametrize(
    ("offset_s", "skew_s"), [(-420, 300), (180, 300), (480, 300), (720, 900)], ids=["-7m", "+3m", "+8m", "+12m"]
)
def test_a_node_clock_off_is_stored_or_refused_and_never_passes_wrongly(
    offset_s: int, skew_s: int, tmp_path: Path, fleet: Fleet
) -> None:
    _libfaketime()
    centre = CentreProcess(tmp_path / "centre", extra_yaml=f"limits: {{clock_skew_s: {skew_s}}}\n").start()
    try:
        _clock_off(offset_s, skew_s, tmp_path, centre, fleet)
    finally:
        centre.stop()


def _clock_off(offset_s: int, skew_s: int, tmp_path: Path, centre: CentreProcess, fleet: Fleet) -> None:
    key = centre.api_key()
    _marker(tmp_path / "reference", 0)
    reference = fleet.make(centre, _config(tmp_path / "reference"), name="reference").start()
    _marker(tmp_path / "skewed", offset_s)
    skewed = SkewedAgent(tmp_path / "skewed", _config(tmp_path / "skewed"), offset_s)
    fleet.made.append(skewed)
    skewed.enrol(centre)
    started = time.time()
    skewed.start()
    wait_until(lambda: len(stored_seqs(centre, reference.agent_id)) >= 2, 40, reference.tail)
    refused = offset_s > skew_s
    if refused:
        wait_until(lambda: len(skewed.pending()) >= 2, 40, skewed.tail)
        assert "400" in skewed.log_text() and "clock" in skewed.log_text(), skewed.tail()
        assert stored_seqs(centre, skewed.agent_id) == []
        assert skewed.rejected() == [], "a report refused for the clock must wait in the spool, not be set aside"
    else:
        wait_until(lambda: len(stored_seqs(centre, skewed.agent_id)) >= 2, 40, skewed.tail)
    wait_until(partial(_judged, centre), 30, "every stored report judged")

    theirs, ours = _findings(centre, key, skewed), _findings(centre, key, reference)
    assert "backup-recent" in ours and set(theirs) == set(ours), (sorted(theirs), sorted(ours))
    passing = {r for r, f in theirs.items() if f["status"] == "passing"}
    assert passing <= {r for r, f in ours.items() if f["status"] == "passing"}, (theirs, ours)
    if refused:
        assert not passing, theirs
    elif offset_s > 600:
        assert ours["backup-recent"]["status"] == "passing", ours["backup-recent"]
        assert theirs["backup-recent"]["status"] == "unknown", theirs["backup-recent"]
        assert "in the future" in json.dumps(theirs["backup-recent"]), theirs["backup-recent"]
        assert {r: f["status"] for r, f in theirs.items() if r != "backup-recent"} == {
            r: f["status"] for r, f in ours.items() if r != "backup-recent"
        }
    else:
        assert {r: f["status"] for r, f in theirs.items()} == {r: f["status"] for r, f in ours.items()}

    for agent in (reference, skewed):
        if agent is skewed and refused:
            assert skewed.stop() == 0
            continue
        stop_drained(agent, centre)
        assert_exactly_once(agent, centre, api_key=key, clock_ahead_s=max(offset_s, 0) + 5)
    rows = ledger(centre, skewed.agent_id)
    ahead = [(r.collected_at - r.received_at).total_seconds() for r in rows]
    if rows:  # the node's clock is what collected_at says: off by about the offset
        assert all(abs(a - offset_s) < 60 for a in ahead), ahead
    print(
        "clock off "
        + json.dumps(
            {
                "offset_s": offset_s,
                "clock_skew_s": skew_s,
                "stored": len(rows),
                "waiting": len(skewed.pending()),
                "collected_minus_received_s": [round(a) for a in ahead[:3]],
                "statuses": {r: f["status"] for r, f in sorted(_findings(centre, key, skewed).items())},
                "seconds": round(time.time() - started),
            }
        )
    )
