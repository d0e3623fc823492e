"""The network between an agent and the centre cut for longer than the spool's time bound, then healed.

The agent runs in a network namespace the test makes, joined to the host by a veth pair; the centre
listens on the host end.  The node's end of the link goes down.  The agent goes on collecting into
its spool (a round every 10 s, ``spool.max_age`` 60 s, the smallest agent.yaml accepts); the centre
marks the node silent after 15 s and opens its silent incident.  Once the agent has dropped reports
older than 60 s (counted in dropped.json and logged), the link is healed: the reports within the
bound arrive exactly once, the dropped ones are the only gaps in the ledger and are said in the
node's health, the incident resolves and ``tillsyn-central verify`` passes.

It runs for about 100 s: the cut has to outlast the 60 s bound.
"""

from __future__ import annotations

import json
import sqlite3
from functools import partial
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from tests.centre_process import CentreProcess
from tests.e2e.harness import AgentProcess, Fleet, agent_yaml, assert_exactly_once, stored_seqs, wait_until
from tests.reliability.netns import Netns
from tests.reliability.settle import stop_drained
from tests.tls import self_signed

MAX_AGE_S = 60
CENTRE = "heartbeat_interval_s: 5\nsilent_after_s: 15\nduty_interval_s: 1\nalerting: {resolve_after_s: 0}\n"


class NetnsAgent(AgentProcess):
    """An agent whose every command (enrol, the daemon, status) runs inside the namespace."""

    def __init__(self, base: Path, config_text: str, netns: Netns, ca: Path) -> None:
        super().__init__(base, config_text)
        self.netns = netns
        self.netns_ca = ca

    def _command(self, *args: str) -> List[str]:
        pinned = ["--ca", str(self.netns_ca)] if args[:1] == ("enroll",) else []
        return [*self.netns.prefix(), *super()._command(*args, *pinned)]


@pytest.fixture
def netns() -> Iterator[Netns]:
    made = Netns()
    yield made
    made.delete()


def _node(centre: CentreProcess, key: Dict[str, str], agent: AgentProcess) -> Dict[str, Any]:
    """The node as the API shows it (its health), with its row of the agents table (silent, heartbeats)."""
    shown = next(n for n in centre.get("/api/v1/nodes", key) if n["id"] == agent.agent_id)
    with sqlite3.connect(f"file:{centre.state / 'central.db'}?mode=ro", uri=True, timeout=10) as db:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT silent, last_heartbeat_seq FROM agents WHERE id = ?", (agent.agent_id,)).fetchone()
    return {**shown, **dict(row)}


def _silent_incidents(centre: CentreProcess, key: Dict[str, str], agent: AgentProcess) -> List[Dict[str, Any]]:
    found = centre.get(f"/api/v1/incidents?node={agent.agent_id}", key)
    return [i for i in found if i["rule_id"] == "silent"]


def _dropped(agent: AgentProcess) -> Dict[str, Any]:
    path = agent.state / "spool" / "dropped.json"
    data: Dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"count": 0}
    return data


def test_a_cut_longer_than_the_spool_bound_drops_only_what_is_counted(
    tmp_path: Path, netns: Netns, fleet: Fleet
) -> None:
    # Plain http is for loopback only: the centre on the veth address speaks TLS, the agent pins its CA.
    cert, key = self_signed(tmp_path / "tls", netns.host_ip)
    centre = CentreProcess(tmp_path / "centre", host=netns.host_ip)
    listen = f"{{host: {netns.host_ip}, port: {centre.port}, tls_cert: {cert}, tls_key: {key}}}"
    centre.config.write_text(f"state_dir: {centre.state}\nlisten: {listen}\n{CENTRE}")
    centre.scheme, centre.ca = "https", cert
    centre.start()
    try:
        _cut_and_heal(tmp_path, centre, netns, fleet)
    finally:
        centre.stop()


def _cut_and_heal(tmp_path: Path, centre: CentreProcess, netns: Netns, fleet: Fleet) -> None:
    assert centre.ca is not None
    key = centre.api_key()
    agent = NetnsAgent(tmp_path / "node", agent_yaml(extra=f"spool: {{max_age: {MAX_AGE_S}}}\n"), netns, centre.ca)
    fleet.made.append(agent)
    agent.enrol(centre)
    agent.start()
    wait_until(partial(stored_seqs, centre, agent.agent_id), 30, agent.tail)
    wait_until(lambda: _node(centre, key, agent)["last_heartbeat_seq"], 30, agent.tail)
    before = stored_seqs(centre, agent.agent_id)

    netns.cut()
    wait_until(lambda: _node(centre, key, agent)["silent"], 40, lambda: f"silent: {_node(centre, key, agent)}")
    opened = wait_until(
        partial(_silent_incidents, centre, key, agent), 30, lambda: f"a silent incident for {agent.agent_id}"
    )
    assert [i["status"] for i in opened] == ["open"], opened
    # Rounds go on into the spool; those older than the bound are dropped, counted and logged.
    wait_until(lambda: _dropped(agent)["count"] >= 1, MAX_AGE_S + 45, lambda: f"a drop at the bound\n{agent.tail()}")
    assert "dropped at the spool bound (older than spool.max_age 60 s" in agent.log_text(), agent.tail()
    assert agent.proc is not None and agent.proc.poll() is None, "the agent must survive the cut"

    netns.heal()
    wait_until(lambda: not _node(centre, key, agent)["silent"], 40, lambda: f"heartbeats back\n{agent.tail()}")
    message = "report(s) dropped at the spool bound"
    wait_until(
        lambda: message in json.dumps(_node(centre, key, agent).get("health") or {}),
        30,
        lambda: f"{message!r} in the node's health: {_node(centre, key, agent).get('health')}",
    )
    resolved = wait_until(
        lambda: [i for i in _silent_incidents(centre, key, agent) if i["status"] == "resolved"],
        30,
        lambda: f"the silent incident resolved: {_silent_incidents(centre, key, agent)}",
    )
    assert len(_silent_incidents(centre, key, agent)) == 1 and len(resolved) == 1
    stop_drained(agent, centre)

    dropped = _dropped(agent)
    stored = stored_seqs(centre, agent.agent_id)
    missing = sorted(set(range(1, agent.last_seq() + 1)) - set(stored))
    # The oldest of the cut went: one run right after what was delivered before it, ending at last_seq.
    assert len(missing) == dropped["count"] and missing[-1] == dropped["last_seq"], (missing, dropped)
    assert missing == list(range(before[-1] + 1, missing[-1] + 1)), (before, missing)
    rows = assert_exactly_once(agent, centre, known_gaps=missing, api_key=key)
    print(
        "network cut "
        + json.dumps(
            {
                "stored": len(rows),
                "stored_before_cut": len(before),
                "dropped": dropped["count"],
                "incidents": [(i["rule_id"], i["status"]) for i in _silent_incidents(centre, key, agent)],
            }
        )
    )
