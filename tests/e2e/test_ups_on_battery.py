"""A real NUT upsd with dummy-ups drivers (the power collector tests' set-up), the real daemon
reporting to the real centre: the UPS going on battery turns the centre's finding
``power-ups-on-line`` failing, showing the UPS status, and back on line turns it passing.

The NUT state is not among the power collector's watched files, so the daemon sees the change
at its power interval (10 s here)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Dict

from tests.centre_process import CentreProcess
from tests.collectors.power.helpers import ON_BATTERY, ON_LINE, Nut, nut, set_ups  # noqa: F401  (nut: the fixture)
from tests.e2e.harness import AgentProcess, agent_yaml, assert_exactly_once, wait_until

RULE = "power-ups-on-line"
POWER_INTERVAL = 10


def test_ups_on_battery_turns_the_finding_failing_and_back(
    nut: Nut,  # noqa: F811
    centre: CentreProcess,
    make_agent: Callable[..., AgentProcess],
    api_key: Dict[str, str],
    tmp_path: Path,
) -> None:
    (tmp_path / "etc-nut").mkdir()
    set_ups(nut, ON_LINE, ["OL", "CHRG"])
    agent = make_agent(agent_yaml(nut_port=nut.port, nut_dir=tmp_path / "etc-nut")).start()

    def finding() -> Dict[str, Any]:
        found = centre.get(f"/api/v1/findings?node={agent.agent_id}&rule={RULE}", api_key)
        return found[0] if found else {}

    def status_is(wanted: str) -> Callable[[], bool]:
        return lambda: finding().get("status") == wanted

    wait_until(status_is("passing"), 30, lambda: f"{RULE} passing, have {finding()}\n{agent.tail()}", step=0.5)

    changed = set_ups(nut, ON_BATTERY, ["OB", "DISCHRG"])
    bound = POWER_INTERVAL + 15  # one interval, the round, delivery and evaluation, with room for a slow CI
    wait_until(status_is("failing"), bound, lambda: f"{RULE} failing, have {finding()}\n{agent.tail()}", step=0.5)
    to_failing = time.monotonic() - changed
    failing = finding()
    assert failing["severity"] == "high" and failing["controls"] == ["M01"]
    # The observed value names the UPS on battery (only it: the other is still on line) and its
    # status as upsd reported it.
    assert failing["observed"] == [
        {
            "name": "flip",
            "server": f"127.0.0.1:{nut.port}",
            "status_raw": "OB DISCHRG",
            "battery_charge_pct": 60.0,
            "runtime_s": 1800,
        }
    ], failing
    assert failing["message"] == (
        f"UPS flip@127.0.0.1:{nut.port} is on battery (OB DISCHRG), 30 min runtime left, battery at 60 %"
    ), failing

    changed = set_ups(nut, ON_LINE, ["OL", "CHRG"])
    wait_until(status_is("passing"), bound, lambda: f"{RULE} passing again, have {finding()}", step=0.5)
    to_passing = time.monotonic() - changed
    assert agent.stop() == 0
    assert_exactly_once(agent, centre, api_key=api_key)
    print(f"{RULE}: failing {to_failing:.1f} s after the UPS went on battery, passing {to_passing:.1f} s after")
