"""Alert latency: a deviation on a node to the webhook notification, and silence to the silent page.

Everything is real and on loopback: NUT ``upsd`` with a ``dummy-ups`` driver (the UPS going on
battery is the deviation), ``tillsyn-agent run`` daemons enrolled in a ``tillsyn-central serve``
process, and a webhook receiver that checks the signature and notes when each notification
arrived.  (a) the time from the moment upsd serves ``OB DISCHRG`` to the ``trigger`` for
``power-ups-on-line``; (b) the time from a killed node's last heartbeat (the centre's
``last_heartbeat_at``) to its ``silent`` trigger, against the configured threshold.

Scenarios: *defaults* (shipped agent.yaml and central.yaml timings), *power 10 s* (the lowest
collector interval, centre defaults) and *tuned* (power 10 s, centre duties every 2 s, outbox
every 1 s, heartbeats 10 s).  With ``--write`` it replaces its section of docs/benchmarks.md.

    .venv/bin/python -m bench.alert_latency --write            # about 8 minutes
    .venv/bin/python -m bench.alert_latency --skip-defaults    # about 2 minutes
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import yaml

from bench.docs import replace_section
from bench.machine import describe
from collectors.power import read_servers
from tests.centre_process import CentreProcess
from tests.collectors.power.helpers import ON_LINE, Nut
from tests.e2e.alert_helpers import Hook, query, webhook, write_key
from tests.e2e.harness import AgentProcess, wait_until

ROOT = Path(__file__).resolve().parents[1]
RULE = "power-ups-on-line"
ON_BATTERY = ON_LINE.replace("OL CHRG", "OB DISCHRG").replace("charge: 95", "charge: 60")
GOAL_DEVIATION_S = 15.0
GOAL_SILENCE_MARGIN_S = 10.0


@dataclass
class Scenario:
    name: str
    what: str
    power_interval: Optional[int]  # None: the shipped default (300 s)
    agent_heartbeat: Optional[int]  # None: the shipped default (60 s)
    centre: Dict[str, Any]  # central.yaml timings beside the defaults
    flips: int
    power_agents: int
    silence_agents: int
    deviation_s: List[float] = field(default_factory=list)
    silence_s: List[float] = field(default_factory=list)
    threshold_s: int = 180


SCENARIOS = [
    Scenario(
        "defaults",
        "shipped agent.yaml (power every 300 s + up to 10 % jitter, heartbeats every 60 s) and central.yaml "
        "(duties every 10 s, outbox every 2 s, silent after 3 x 60 s)",
        None,
        None,
        {},
        flips=1,
        power_agents=3,
        silence_agents=3,
    ),
    Scenario(
        "power 10 s",
        "power every 10 s (the lowest interval allowed), everything else shipped",
        10,
        None,
        {"alerting": {"resolve_after_s": 5}},
        flips=3,
        power_agents=3,
        silence_agents=0,
    ),
    Scenario(
        "tuned",
        "power every 10 s, heartbeats every 10 s (centre: heartbeat_interval_s 10, so silent after 30 s), "
        "duty_interval_s 2, dispatch_interval_s 1",
        10,
        10,
        {
            "heartbeat_interval_s": 10,
            "duty_interval_s": 2,
            "alerting": {"dispatch_interval_s": 1, "resolve_after_s": 5},
        },
        flips=3,
        power_agents=3,
        silence_agents=3,
        threshold_s=30,
    ),
]


@contextmanager
def nut_server(base: Path) -> Iterator[Nut]:
    """upsd and one dummy-ups driver on a private port (as tests/collectors/power/test_nut_upsd.py)."""
    upsd = "/lib/nut/upsd" if os.path.exists("/lib/nut/upsd") else shutil.which("upsd") or "/usr/sbin/upsd"
    candidates = ("/lib/nut/dummy-ups", "/usr/lib/nut/dummy-ups", shutil.which("dummy-ups"))
    dummy = next(p for p in candidates if p and os.path.exists(p))
    (base / "etc").mkdir(parents=True)
    (base / "state").mkdir()
    os.chmod(base / "state", 0o777)
    from tests.centre_process import free_port

    server = Nut(base, free_port())
    server.set_flip(ON_LINE)
    (base / "etc" / "ups.conf").write_text(f"[flip]\n driver = dummy-ups\n port = {base}/flip.dev\n")
    (base / "etc" / "upsd.conf").write_text(f"LISTEN 127.0.0.1 {server.port}\n")
    (base / "etc" / "upsd.users").write_text("[monuser]\n password = s3cret\n upsmon primary\n")
    os.chmod(base / "etc" / "upsd.users", 0o600)
    env = {**os.environ, "NUT_CONFPATH": str(base / "etc"), "NUT_STATEPATH": str(base / "state")}
    user = ["-u", "root"] if os.geteuid() == 0 else []
    log = open(base / "nut.log", "wb")  # noqa: SIM115
    try:
        server.procs.append(subprocess.Popen([dummy, "-a", "flip", "-F", *user], env=env, stdout=log, stderr=log))
        server.procs.append(subprocess.Popen([upsd, "-F", *user], env=env, stdout=log, stderr=log))
        wait_until(lambda: flags(server), 15, "upsd and dummy-ups")
        yield server
    finally:
        for proc in server.procs:
            proc.terminate()
            proc.wait(10)
        log.close()


def flags(server: Nut) -> List[str]:
    return next((u.flags for u in read_servers.query_nut("127.0.0.1", server.port, 1.0).ups if u.name == "flip"), [])


def set_ups(server: Nut, text: str, wanted: List[str]) -> float:
    """Change the UPS; returns the wall-clock moment upsd first serves the new status."""
    server.set_flip(text)
    wait_until(lambda: flags(server) == wanted, 15, f"upsd to serve {wanted}", step=0.05)
    return time.time()


def agent_config(scenario: Scenario, nut_port: int, nut_dir: Path) -> str:
    """The shipped agent.yaml's defaults, with the power collector pointed at our upsd."""
    power: Dict[str, Any] = {"nut_servers": [{"host": "127.0.0.1", "port": nut_port}], "nut_config_dir": str(nut_dir)}
    if scenario.power_interval:
        power["interval"] = scenario.power_interval
    data: Dict[str, Any] = {
        "collectors": {
            "power": power,
            # Not part of the measured path; off so their findings stay out of the way.
            "disk_encryption": {"enabled": False},
            "antivirus": {"enabled": False},
            "backup": {"enabled": False},
            "ports": {"enabled": False},
        }
    }
    if scenario.agent_heartbeat:
        data["heartbeat_interval"] = scenario.agent_heartbeat
    return yaml.safe_dump(data)


def wall(monotonic_at: float) -> float:
    return time.time() - (time.monotonic() - monotonic_at)


def utc_seconds(value: Any) -> float:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return float(moment.timestamp())


def power_phase(scenario: Scenario, server: Nut, hook: Hook, centre: CentreProcess, agents: List[AgentProcess]) -> None:
    interval = scenario.power_interval or 300
    for flip in range(scenario.flips):
        time.sleep(random.uniform(0, interval))  # a random phase against the agents' schedules
        changed = set_ups(server, ON_BATTERY, ["OB", "DISCHRG"])
        before = {a.agent_id: len(hook.events(RULE, a.agent_id)) for a in agents}

        def arrived(before: Dict[str, int] = before) -> bool:
            return all(hook.kinds(RULE, a.agent_id)[before[a.agent_id] :].count("trigger") for a in agents)

        wait_until(arrived, interval * 1.1 + 120, "every node's trigger", step=0.1)
        for agent in agents:
            new = [d for d in hook.events(RULE, agent.agent_id)[before[agent.agent_id] :] if d.event == "trigger"]
            scenario.deviation_s.append(wall(new[0].at) - changed)
        latest = [round(s, 1) for s in scenario.deviation_s[-len(agents) :]]
        print(f"{scenario.name}: flip {flip + 1}: {latest}", flush=True)
        set_ups(server, ON_LINE, ["OL", "CHRG"])
        if flip + 1 < scenario.flips:
            wait_until(
                lambda: all(hook.kinds(RULE, a.agent_id)[-1:] == ["resolve"] for a in agents),
                interval * 1.1 + 120,
                "every node's resolve",
                step=0.2,
            )


def silence_phase(scenario: Scenario, hook: Hook, centre: CentreProcess, agents: List[AgentProcess]) -> None:
    beat = scenario.agent_heartbeat or 60
    for agent in agents:
        time.sleep(random.uniform(0, beat))  # a random moment in the heartbeat cycle
        agent.kill()
    for agent in agents:
        wait_until(
            lambda agent=agent: hook.kinds("silent", agent.agent_id),  # type: ignore[misc]
            scenario.threshold_s + 120,
            "the silent page",
            step=0.1,
        )
        [row] = query(centre, "SELECT last_heartbeat_at FROM agents WHERE id = :i", i=agent.agent_id)
        arrived = wall(hook.events("silent", agent.agent_id)[0].at)
        scenario.silence_s.append(arrived - utc_seconds(row["last_heartbeat_at"]))
    print(f"{scenario.name}: silence: {[round(s, 1) for s in scenario.silence_s]}", flush=True)


def run(scenario: Scenario, server: Nut, base: Path) -> None:
    key = write_key(base)
    hook = Hook().start()
    centre_settings: Dict[str, Any] = {k: v for k, v in scenario.centre.items() if k != "alerting"}
    alerting = {
        **scenario.centre.get("alerting", {}),
        "channels": {"hook": webhook(hook.url, key)},
        "routes": [{"match": {"rules": [RULE, "silent"]}, "channels": ["hook"]}],
    }
    centre = CentreProcess(base / "centre", extra_yaml=yaml.safe_dump({**centre_settings, "alerting": alerting}))
    agents: List[AgentProcess] = []
    try:
        centre.start()
        (base / "etc-nut").mkdir()
        text = agent_config(scenario, server.port, base / "etc-nut")
        for i in range(scenario.power_agents + scenario.silence_agents):
            agent = AgentProcess(base / f"node{i}", text)
            agent.enrol(centre)
            agents.append(agent.start())
        power, silent = agents[: scenario.power_agents], agents[scenario.power_agents :]
        ids = ", ".join(f"'{a.agent_id}'" for a in agents)
        passing = f"SELECT 1 FROM findings WHERE rule_id = '{RULE}' AND status = 'passing' AND agent_id IN ({ids})"
        beating = f"SELECT 1 FROM agents WHERE last_heartbeat_at IS NOT NULL AND id IN ({ids})"
        wait_until(
            lambda: len(query(centre, passing)) == len(agents) and len(query(centre, beating)) == len(agents),
            120,
            "every node reporting and beating",
            step=0.5,
        )
        threads = [threading.Thread(target=power_phase, args=(scenario, server, hook, centre, power))]
        if silent:
            threads.append(threading.Thread(target=silence_phase, args=(scenario, hook, centre, silent)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert hook.bad_signatures == 0
    finally:
        for agent in agents:
            agent.kill()
        centre.stop()
        hook.stop()


def summary(values: Sequence[float]) -> str:
    if not values:
        return "-"
    median, low, high = statistics.median(values), min(values), max(values)
    return f"{median:.1f} / {high:.1f} ({low:.1f} to {high:.1f}, n={len(values)})"


def report(scenarios: Sequence[Scenario], command: str, took: float) -> str:
    lines = [
        f"Command: `{command}` as {'root' if os.geteuid() == 0 else 'an unprivileged user'}, "
        f"{time.strftime('%Y-%m-%d')}; the whole run took {took / 60:.1f} min.",
        f"Machine: {describe()}; load average {os.getloadavg()[0]:.2f} at the end.",
        "",
        "| scenario | settings | UPS on battery → webhook, s: median / worst (range, n) | "
        "last heartbeat → silent page, s: median / worst (range, n) | silent threshold s |",
        "|---|---|---|---|---|",
    ]
    for s in scenarios:
        lines.append(
            f"| {s.name} | {s.what} | {summary(s.deviation_s)} | {summary(s.silence_s)} | "
            f"{s.threshold_s if s.silence_agents else '-'} |"
        )
    lines.append("")
    for s in scenarios:
        verdicts = []
        if s.deviation_s:
            worst = max(s.deviation_s)
            verdicts.append(
                f"deviation → notification worst {worst:.1f} s vs goal ≤ {GOAL_DEVIATION_S:g} s: "
                f"{'met' if worst <= GOAL_DEVIATION_S else 'MISSED'}"
            )
        if s.silence_s:
            worst = max(s.silence_s)
            bound = s.threshold_s + GOAL_SILENCE_MARGIN_S
            verdicts.append(
                f"silence worst {worst:.1f} s vs goal ≤ {s.threshold_s} + {GOAL_SILENCE_MARGIN_S:g} = {bound:g} s: "
                f"{'met' if worst <= bound else 'MISSED'}"
            )
        lines.append(f"- {s.name}: " + "; ".join(verdicts) + ".")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-defaults", action="store_true", help="leave out the 300 s default scenario")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args(argv)
    chosen = [s for s in SCENARIOS if not (args.skip_defaults and s.name == "defaults")]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tillsyn-alert-bench-") as tmp, nut_server(Path(tmp) / "nut") as server:
        # One after another: they share the UPS, and one scenario's flips would reach the others' agents.
        for index, scenario in enumerate(chosen):
            run(scenario, server, Path(tmp) / f"s{index}")
    command = " ".join([".venv/bin/python -m bench.alert_latency", *(argv if argv is not None else sys.argv[1:])])
    text = report(chosen, command, time.monotonic() - started)
    print(text)
    if args.write:
        replace_section(ROOT / "docs" / "benchmarks.md", "alert-latency", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
