"""A spool full beyond its bound during an outage drops its oldest reports, counts them, and
tells the centre: the only gaps in the centre's ledger are exactly the dropped ones."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict

from tests.centre_process import CentreProcess
from tests.e2e.harness import (
    AgentProcess,
    agent_yaml,
    assert_exactly_once,
    diagnostics,
    drained,
    spool_backlog,
    stored_seqs,
    wait_until,
)

BOUND = 64 * 1024  # the smallest bound agent.yaml accepts; a report here is several KiB


def test_dropped_at_the_bound_are_the_only_gaps_and_are_reported(
    centre: CentreProcess, make_agent: Callable[..., AgentProcess], api_key: Dict[str, str]
) -> None:
    agent = make_agent(agent_yaml(extra=f"spool: {{max_bytes: {BOUND}}}\n")).start()
    wait_until(lambda: stored_seqs(centre, agent.agent_id), 20, lambda: f"the first report\n{agent.tail()}")
    assert agent.stop() == 0
    centre.stop()
    backlog = spool_backlog(agent, 20)
    assert sum((agent.state / "spool" / f"{s:020d}.json").stat().st_size for s in backlog) > 2 * BOUND

    agent.start()
    dropped_file = agent.state / "spool" / "dropped.json"
    wait_until(dropped_file.exists, 15, lambda: f"reports dropped at the bound\n{agent.tail()}")
    status = agent.cli("status")
    assert status.returncode == 0, status.stderr
    assert "dropped at the bound: 0)" not in status.stdout, status.stdout

    centre.start()
    wait_until(lambda: drained(agent, centre), 30, lambda: diagnostics(agent, centre))
    # The heartbeat carries the count to the centre, where the node's health shows it.
    dropped = json.loads(dropped_file.read_text())
    message = f"{dropped['count']} report(s) dropped at the spool bound"

    def reported() -> bool:
        node = next(n for n in centre.get("/api/v1/nodes", api_key) if n["id"] == agent.agent_id)
        health: Dict[str, Any] = node.get("health") or {}  # type: ignore[assignment]
        return message in health.get("last_errors", [])

    wait_until(reported, 15, f"{message!r} in the node's health at the centre", step=0.5)
    assert agent.stop() == 0

    stored = set(stored_seqs(centre, agent.agent_id))
    missing = sorted(set(range(1, agent.last_seq() + 1)) - stored)
    # Oldest first: the dropped ones are the head of the backlog, one run, ending at last_seq.
    assert len(missing) == dropped["count"] and missing[-1] == dropped["last_seq"], (missing, dropped)
    assert missing == list(range(missing[0], missing[-1] + 1)) and missing[0] == min(backlog), missing
    assert_exactly_once(
        agent,
        centre,
        known_gaps=missing,
        expect_ids={s: i for s, i in backlog.items() if s not in missing},
        api_key=api_key,
    )
