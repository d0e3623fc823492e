"""Fleet simulation: how many nodes one centre holds at the shipped intervals.

Starts a real ``tillsyn-central serve`` (SQLite in its own state directory, or a fresh PostgreSQL
database; with ``--replicas K`` K processes on one PostgreSQL behind a loopback balancer from
``bench/replicas.py``), enrols ``--nodes`` simulated nodes through the API (each its own Ed25519
key), sends each node's first full report and a heartbeat (untimed, then waits until all are
judged), then plans and signs every request of the timed phase (``bench/fleet_plan.py``: the
agent's own schedule and jitter per node, a share of nodes deviating, flapping, going silent and
new nodes enrolling) and sends each when it is due (``bench/fleet_run.py``). The first
``--warmup`` seconds of the timed phase are sent but not counted. A webhook receiver times each
deviating node's first deviating report to its notification.

Afterwards: the stored reports per node against what was sent and acknowledged (lost,
duplicated), each node's last heartbeat sequence number against the last acknowledged, and
``tillsyn-central verify``. The last line of the output is the summary to compare reruns by:
``fleet: nodes=N hb_per_s=… reports_per_s=… p99_ms=… backlog=… lost=… duplicated=…``.

    .venv/bin/python -m bench.fleet --nodes 2000 --minutes 10 --db sqlite
    .venv/bin/python -m bench.fleet --nodes 2000 --minutes 10 --db postgresql
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlsplit

import yaml
from sqlalchemy import String, bindparam, create_engine, insert, select, text

from agent.config import AgentConfig
from agent.config import load as load_agent_config
from bench import load_nodes
from bench.docs import replace_section
from bench.fleet_plan import HEARTBEAT, KINDS, NEW_SHARE, REPORT, Fleet, Planner, behaviours, rounds
from bench.fleet_run import Outcome, Run, Sample, Sampler, timed
from bench.load_drain import backlog as backlog_at
from bench.load_phases import sequential
from bench.load_report import code_version
from bench.load_server import BIN, ROOT, Centre, pg_database
from bench.load_verify import Check, Ledger, check
from bench.machine import describe
from evidence.model import Evidence
from tests.e2e.alert_helpers import PLAINTEXT_RULE, Hook, webhook, write_key

NOTIFY_WAIT_S = 90.0
GOAL_P99_MS = 100.0
FIND_MAX_NODES = 200_000
DRAIN_WAIT_S = 1800.0


@dataclass
class Settings:
    nodes: int
    minutes: float
    db: str
    replicas: int
    warmup_s: float
    seed: int

    @property
    def total_s(self) -> float:
        return self.warmup_s + self.minutes * 60


def alerting_yaml(hook: Hook, key: Path) -> str:
    return yaml.safe_dump(
        {
            "alerting": {
                "channels": {"hook": webhook(hook.url, key)},
                "routes": [{"match": {"rules": [PLAINTEXT_RULE]}, "channels": ["hook"]}],
            }
        }
    )


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] * 1000


def descendants(name: str) -> List[int]:
    """Processes started (directly or not) by this one whose command line contains ``name``."""
    parents: Dict[int, int] = {}
    cmdlines: Dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdlines[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    mine = os.getpid()

    def under(pid: int) -> bool:
        seen = 0
        while pid > 1 and seen < 64:
            pid = parents.get(pid, 0)
            if pid == mine:
                return True
            seen += 1
        return False

    return [pid for pid, line in cmdlines.items() if name in line and under(pid)]


class Target:
    """Where the fleet sends: one centre process, or replicas behind a balancer."""

    def __init__(self, centre: Centre, base_url: str, pids: List[int]) -> None:
        self.centre, self.base_url = centre, base_url
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._pids = pids

    def centre_pids(self) -> List[int]:
        return self._pids or descendants(" serve")

    def db_pids(self) -> List[int]:
        return self.centre.backend_pids()


def start_target(
    stack: ExitStack, s: Settings, state: Path, extra_yaml: str, prepare: Callable[[Centre], None]
) -> Target:
    """The centre (or replicas) started on a database ``prepare`` has filled (the schema is there)."""
    url = stack.enter_context(pg_database()) if s.db == "postgresql" else None
    centre = Centre(state, url)
    with centre.config.open("a") as config:
        config.write(extra_yaml)
    centre.cli("db", "upgrade")
    prepare(centre)
    if s.replicas >= 2:
        return start_replicas(stack, s, centre, state, extra_yaml)
    centre.start(duties=True)
    stack.callback(centre.stop)
    assert centre.proc is not None
    return Target(centre, f"http://127.0.0.1:{centre.port}", [centre.proc.pid])


def start_replicas(stack: ExitStack, s: Settings, centre: Centre, state: Path, extra_yaml: str) -> Target:
    """``--replicas K``: K serve processes behind the balancer of ``bench/replicas.py``, each with the
    webhook channel (where that module takes more configuration lines; otherwise no notification
    can be timed, and the report says so)."""
    try:
        module = importlib.import_module("bench.replicas")
    except ImportError as err:
        raise SystemExit(f"--replicas needs bench/replicas.py (the replicas engineer's balancer): {err}") from err
    db_url = centre.database_url.replace("+psycopg", "")
    running = getattr(module, "running", None)
    if running is not None:
        group = stack.enter_context(running(db_url, s.replicas, state / "replicas", extra_yaml=extra_yaml))
        pids = [r.proc.pid for r in group.members if r.proc is not None]
        return Target(centre, str(group.url).rstrip("/"), pids)
    base = stack.enter_context(module.replicas(db_url, s.replicas, state / "replicas"))
    return Target(centre, str(base).rstrip("/"), [])


def enrol_directly(config_path: Path, nodes: List[load_nodes.Node], token: str) -> None:
    """Enrol the fleet before the run through the centre's own enrolment function, 500 nodes a
    transaction: over HTTP every enrolment waits for the previous one's commit on the token's use
    count (300 nodes took 154 s on PostgreSQL with the machine shared). The endpoint then writes a
    stale finding (and its change) per rule in force, 141 statements a node with the shipped
    policy; here the first node of a transaction gets them so, and the others a copy of its rows
    (the same rules, verdicts and times, two statements a node)."""
    from central import enrolment
    from central.clock import utcnow
    from central.config import load as load_central
    from central.db.engine import write_tx
    from central.db.schema import finding_changes, findings
    from central.judging.findings import ensure_all
    from central.runtime.service import open_centre

    copies = []
    for table in (findings, finding_changes):
        columns = [c for c in table.c if c.name != "id"]
        chosen = [bindparam("new", type_=String) if c.name == "agent_id" else c for c in columns]
        source = select(*chosen).where(table.c.agent_id == bindparam("first", type_=String))
        copies.append(insert(table).from_select([c.name for c in columns], source))
    config = load_central(str(config_path), os.environ)
    centre = open_centre(config)
    try:
        for start in range(0, len(nodes), 500):
            with write_tx(centre.engine) as conn:
                now = utcnow()
                first = ""
                for node in nodes[start : start + 500]:
                    body = node.enrolment(token).split(b"\r\n\r\n", 1)[1]
                    req = enrolment.parse_request(json.loads(body))
                    node.agent_id = enrolment.enrol(conn, req, now, config.default_tenant)["agent_id"]
                    if not first:
                        first = node.agent_id
                        ensure_all(conn, centre.policy.policy, enrolment.get_agent(conn, first), now)
                        continue
                    for copy in copies:
                        conn.execute(copy, {"new": node.agent_id, "first": first})
    finally:
        centre.engine.dispose()


def first_reports(target: Target, nodes: List[load_nodes.Node], template: Sequence[Evidence], ledger: Ledger) -> float:
    """Each node's first full report and a heartbeat (untimed, 1,000 nodes at a time, so a large
    fleet's signed reports are not all in memory at once); the seconds until all were judged."""
    started = time.monotonic()
    for first in range(0, len(nodes), 1000):
        chunk = nodes[first : first + 1000]
        reports = [node.report(template) for node in chunk]
        answers = sequential(target.host, target.port, [r.data for r in reports])
        ledger.add((r, status, body) for r, (status, body) in zip(reports, answers))
        beats = [node.heartbeat().data for node in chunk]
        for status, body in sequential(target.host, target.port, beats):
            if status != 200:
                raise SystemExit(f"a first heartbeat was refused: {status} {body.decode(errors='replace')}")
    wait_judged(target, DRAIN_WAIT_S)
    return time.monotonic() - started


def signing_estimate_s(template: Sequence[Evidence], s: Settings, config: AgentConfig) -> float:
    """About how long signing the plan takes: a heartbeat a minute, and one node's rounds as the
    agent's schedule makes them."""
    probe = load_nodes.Node(-1, agent_id="probe")
    started = time.monotonic()
    for _ in range(20):
        probe.report(template)
    report_s = (time.monotonic() - started) / 20
    started = time.monotonic()
    for _ in range(20):
        probe.heartbeat()
    beat_s = (time.monotonic() - started) / 20
    reports = len(rounds(config, 0.0, s.total_s))
    return s.nodes * (s.total_s / 60 * beat_s + reports * report_s)


def wait_judged(target: Target, limit_s: float) -> float:
    started = time.monotonic()
    while backlog_at(target.port):
        if time.monotonic() - started > limit_s:
            raise SystemExit(f"reports still unjudged {limit_s:g} s after sending")
        time.sleep(0.2)
    return time.monotonic() - started


def heartbeats_stored(target: Target, nodes: List[load_nodes.Node], acked: Dict[int, int]) -> Tuple[int, int]:
    """(nodes whose stored last heartbeat is older than the last acknowledged, newer than sent)."""
    engine = create_engine(target.centre.database_url)
    try:
        with engine.connect() as conn:
            stored: Dict[str, int] = dict(conn.execute(text("SELECT id, last_heartbeat_seq FROM agents")).all())
    finally:
        engine.dispose()
    behind = ahead = 0
    for node in nodes:
        if not node.agent_id:
            continue
        have = int(stored.get(node.agent_id, 0))
        want = acked.get(node.index, 0)
        behind += have < want
        ahead += have > node.hb_seq
    return behind, ahead


def notification_times(hook: Hook, out: Outcome) -> Tuple[List[float], int]:
    """Seconds from each timed deviation's report being due to its webhook trigger; how many never came."""
    deadline = time.monotonic() + NOTIFY_WAIT_S
    while True:
        times, missing = [], 0
        for agent_id, due in out.deviations:
            triggers = [d.at for d in hook.events(PLAINTEXT_RULE, agent_id) if d.event == "trigger" and d.at >= due]
            if triggers:
                times.append(min(triggers) - due)
            else:
                missing += 1
        if not missing or time.monotonic() > deadline:
            return times, missing
        time.sleep(1)


def cpu_between(first: Sample, last: Sample) -> Dict[str, float]:
    """CPU seconds between two samples: the centre, the database's backends, the client, the machine."""
    out: Dict[str, float] = {"centre": 0.0, "database": 0.0}
    for key, value in last.cpu.items():
        spent = value - first.cpu.get(key, 0.0)
        if key.startswith("centre:"):
            out["centre"] += spent
        elif key.startswith("db:"):
            out["database"] += spent  # a backend gone before the end is not counted: a lower bound
        else:
            out[key] = spent
    return out


def backlog_trend(samples: Sequence[Sample], window: Tuple[float, float]) -> Tuple[str, bool]:
    """The backlog in the first and last third of the measured window; growing if even the lowest
    value of the last third is above the highest of the first."""
    inside = [s.backlog for s in samples if window[0] <= s.at <= window[1] and s.backlog >= 0]
    if len(inside) < 3:
        return f"{len(inside)} samples only", False
    third = max(1, len(inside) // 3)
    early, late = inside[:third], inside[-third:]
    growing = min(late) > max(early)
    text = (
        f"first third {min(early)} to {max(early)}, last third {min(late)} to {max(late)}, "
        f"max {max(inside)} ({len(inside)} samples every {samples[1].at - samples[0].at:.0f} s)"
    )
    return text, growing


@dataclass
class Result:
    lines: List[str]
    last: str
    clean: bool
    p99_ms: float
    growing: bool

    @property
    def holds(self) -> bool:
        """What ``--find`` asks of a fleet: p99 within the goal, no growing backlog, nothing lost."""
        return self.clean and self.p99_ms <= GOAL_P99_MS and not self.growing


def run(s: Settings, template: Sequence[Evidence], command: str) -> Result:
    rng = random.Random(s.seed)
    random.seed(s.seed)  # the agent's Schedule draws its jitter from the module's generator
    config = load_agent_config(ROOT / "config" / "agent.yaml", required=True)
    lines: List[str] = []
    with ExitStack() as stack:
        state = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tillsyn-fleet-")))
        key = write_key(state / "hook")
        hook = Hook().start()
        stack.callback(hook.stop)
        new_count = max(1, round(s.nodes * NEW_SHARE))
        nodes = [load_nodes.Node(i) for i in range(s.nodes)]
        token, enrol_s = "", 0.0

        def prepare(centre: Centre) -> None:
            nonlocal token, enrol_s
            uses = str(s.nodes + new_count)
            token = centre.cli("token", "create", "--uses", uses, "--ttl", "24h", "--note", "fleet").split()[0]
            started = time.monotonic()
            enrol_directly(centre.config, nodes, token)
            enrol_s = time.monotonic() - started

        target = start_target(stack, s, state, alerting_yaml(hook, key), prepare)
        ledger = Ledger()
        first_s = first_reports(target, nodes, template, ledger)
        print(f"enrolled {s.nodes} nodes in {enrol_s:.0f} s; first reports judged after {first_s:.0f} s", flush=True)

        fleet = Fleet(nodes, behaviours(s.nodes, rng))
        fleet.new_nodes = [load_nodes.Node(s.nodes + i) for i in range(new_count)]
        fleet.new_at = {n.index: rng.uniform(s.warmup_s, s.warmup_s + s.minutes * 60 * 0.7) for n in fleet.new_nodes}
        enrol_requests = {n.index: n.enrolment(token) for n in fleet.new_nodes}
        # time zero is set after an estimate of the signing time, so no request is signed for the future
        t0 = time.time() + signing_estimate_s(template, s, config) * 1.3 + 10
        planner = Planner(config, template, datetime.fromtimestamp(t0, timezone.utc), s.total_s, s.warmup_s, rng)
        spool_file = stack.enter_context(open(state / "fleet-requests.bin", "w+b"))
        signing = time.process_time()
        planner.write(fleet, spool_file)
        signing = time.process_time() - signing
        counts = {KINDS[k]: sum(1 for i in fleet.items if i.kind == k) for k in (HEARTBEAT, REPORT)}
        print(
            f"signed {counts['heartbeat']:,} heartbeats and {counts['report']:,} reports in {signing:.0f} s "
            f"of CPU ({spool_file.tell() / 2**20:.0f} MiB); the timed phase starts in "
            f"{max(0.0, t0 - time.time()):.0f} s",
            flush=True,
        )
        window = (s.warmup_s, s.total_s)
        runner = Run(target.host, target.port, fleet, planner, spool_file.fileno(), window, enrol_requests)
        sampler = Sampler(target.base_url, target.centre_pids, target.db_pids)
        sampler.start_at = time.monotonic() + max(0.0, t0 - time.time())
        sampler.start()
        out = timed(runner, t0)
        sampler.stop()
        end_backlog = backlog_at(target.port)
        notified, never = notification_times(hook, out)
        wait_judged(target, DRAIN_WAIT_S)
        ledger.add(out.report_answers)
        all_nodes = [*nodes, *fleet.new_nodes]
        behind, ahead = heartbeats_stored(target, all_nodes, out.heartbeat_acked)
        if s.replicas < 2:
            target.centre.stop()
        result = check(target.centre, [n.agent_id for n in all_nodes], ledger)
        samples = [x for x in sampler.samples if window[0] <= x.at <= window[1]] or sampler.samples
        lines = render(s, out, result, samples, sampler, window, end_backlog, notified, never, behind, ahead)
        lines[:0] = [
            f"Command: `{command}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; centre code: commit "
            f"{code_version()}.",
            f"Machine: {describe()}; load average {os.getloadavg()[0]:.2f} at the end.",
            f"Set-up (untimed): {s.nodes:,} nodes enrolled in {enrol_s:.0f} s (through the centre's functions, "
            "before it started); their first full reports and "
            f"heartbeats sent and judged in {first_s:.0f} s; {counts['heartbeat']:,} heartbeats and "
            f"{counts['report']:,} reports signed in {signing:.0f} s of the client's CPU; the client started "
            f"a request at most {out.late_s * 1000:.0f} ms after it was due; {out.signed_in_phase} requests "
            f"of the {len(fleet.new_nodes)} nodes enrolling in the run were signed in it.",
        ]
        lost = result.lost + behind
        duplicated = result.duplicated + ahead
        clean = (
            result.verify_ok
            and not lost
            and not duplicated
            and not result.unexpected
            and not out.refused
            and not never
            and result.sent == result.acked
        )
        rate_hb = out.ok_in_window[HEARTBEAT] / (window[1] - window[0])
        rate_rep = out.ok_in_window[REPORT] / (window[1] - window[0])
        p99 = max(pct(in_window(out, k, window), 0.99) for k in (HEARTBEAT, REPORT))
        last = (
            f"fleet: nodes={s.nodes} hb_per_s={rate_hb:.1f} reports_per_s={rate_rep:.1f} p99_ms={p99:.1f} "
            f"backlog={end_backlog} lost={lost} duplicated={duplicated}"
        )
        growing = backlog_trend(sampler.samples, window)[1]
    return Result(lines, last, clean, p99, growing)


def in_window(out: Outcome, kind: int, window: Tuple[float, float]) -> List[float]:
    return [lat for due, lat in out.latencies[kind] if window[0] <= due < window[1]]


def render(
    s: Settings,
    out: Outcome,
    result: Check,
    samples: Sequence[Sample],
    sampler: Sampler,
    window: Tuple[float, float],
    end_backlog: int,
    notified: List[float],
    never: int,
    behind: int,
    ahead: int,
) -> List[str]:
    span = window[1] - window[0]
    lines = [
        "",
        f"{s.nodes:,} nodes (+ {sum(out.statuses[2].values())} enrolling during the run) on "
        f"{s.db}{f', {s.replicas} replicas behind a balancer' if s.replicas >= 2 else ', one centre process'}; "
        f"{s.minutes:g} min measured after {s.warmup_s:g} s of warm-up:",
        "",
        "| kind | offered/s | answered 200/s | p50 ms | p99 ms | max ms | answered in the window "
        "| not 200 (whole run) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind in (HEARTBEAT, REPORT):
        lat = in_window(out, kind, window)
        bad = sum(v for k, v in out.statuses[kind].items() if k != 200)
        lines.append(
            f"| {KINDS[kind]}s | {out.sent_in_window[kind] / span:.1f} | {out.ok_in_window[kind] / span:.1f} "
            f"| {pct(lat, 0.5):.1f} | {pct(lat, 0.99):.1f} | {pct(lat, 1.0):.1f} "
            f"| {out.ok_in_window[kind]:,} | {bad} |"
        )
    trend, growing = backlog_trend(sampler.samples, window)
    lines += ["", f"- Evaluation backlog (unjudged reports): {end_backlog} at the end; {trend}: "]
    lines[-1] += "GROWING." if growing else "not growing."
    if notified:
        lines.append(
            f"- Deviation → webhook notification (from the deviating report being due): p50 "
            f"{statistics.median(notified):.1f} s, max {max(notified):.1f} s, n={len(notified)}"
            f"{f'; {never} never notified within {NOTIFY_WAIT_S:g} s after the run' if never else ''}."
        )
    else:
        lines.append(f"- Deviation → webhook notification: none measured ({never} deviations without one).")
    if len(samples) >= 2:
        cpu = cpu_between(samples[0], samples[-1])
        wall = samples[-1].at - samples[0].at
        peak = {k: max(x.rss[k] for x in samples) / 1024 for k in ("centre", "db", "client")}
        lines.append(
            f"- CPU over {wall:.0f} s of the window, in cores: centre {cpu['centre'] / wall:.2f}, database "
            f"backends {cpu['database'] / wall:.2f}, client {cpu['client'] / wall:.2f} (its sampler and webhook "
            f"receiver included), whole machine {cpu['machine'] / wall:.2f} of {os.cpu_count()}. Peak memory: "
            f"centre {peak['centre']:.0f} MiB resident, database backends {peak['db']:.0f} MiB private "
            f"(shared buffers not counted), client {peak['client']:.0f} MiB."
        )
    if sampler.errors:
        lines.append(f"- The sampler could not read /healthz {len(sampler.errors)} times: {sampler.errors[0]}")
    lines.append(
        f"- Integrity: {result.sent:,} reports sent, {result.acked:,} acknowledged, {result.rows:,} rows stored: "
        f"{result.lost} lost, {result.duplicated} duplicated, {result.unexpected} unexpected; heartbeats: "
        f"{behind} nodes whose stored last heartbeat is older than the last acknowledged, {ahead} newer than "
        f"any sent; {len(out.refused)} requests refused"
        f"{f' (first: {out.refused[0]})' if out.refused else ''}; `tillsyn-central verify`: {result.verify_output}."
    )
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, required=True, help="simulated nodes enrolled before the run")
    parser.add_argument("--minutes", type=float, required=True, help="measured minutes (after the warm-up)")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--replicas", type=int, default=1, help="serve processes behind a balancer (PostgreSQL)")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds sent but not counted (default 60)")
    parser.add_argument("--seed", type=int, default=1, help="the random plan's seed (default 1)")
    parser.add_argument(
        "--find", action="store_true", help="double --nodes until p99 > 100 ms or the backlog grows, then narrow"
    )
    parser.add_argument("--write", action="store_true", help="replace this database's block in docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.nodes < 1 or args.minutes <= 0 or args.warmup < 0:
        parser.error("--nodes must be at least 1, --minutes above 0, --warmup not negative")
    if args.find and args.nodes > FIND_MAX_NODES:
        parser.error(f"--find starts from --nodes at most {FIND_MAX_NODES}")
    if args.replicas >= 2 and args.db != "postgresql":
        parser.error("--replicas needs --db postgresql (replicas share one database)")
    s = Settings(args.nodes, args.minutes, args.db, args.replicas, args.warmup, args.seed)
    # SIGTERM (timeout, a stopped job) unwinds like Ctrl-C: the centre stopped, its database dropped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench.fleet: stopped by SIGTERM"))
    command = " ".join([".venv/bin/python -m bench.fleet", *(argv if argv is not None else sys.argv[1:])])
    template = load_nodes.capture_template(BIN / "tillsyn-agent", ROOT / "config" / "agent.yaml")
    if args.find:
        return find(s, template, command)
    result = run(s, template, command)
    print("\n".join(result.lines))
    print(result.last)
    if args.write:
        block = f"fleet-{s.db}" + (f"-replicas-{s.replicas}" if s.replicas >= 2 else "")
        replace_section(ROOT / "docs" / "benchmarks.md", block, "\n".join([*result.lines, "", f"`{result.last}`"]))
    return 0 if result.clean else 1


def find(s: Settings, template: Sequence[Evidence], command: str) -> int:
    """The largest fleet that holds (p99 ≤ 100 ms, no growing backlog, nothing lost): doubling from
    ``--nodes`` until one does not, then three halvings of the gap. Each step is a whole run."""
    held: Optional[Tuple[int, Result]] = None
    failed: Optional[int] = None
    nodes = s.nodes
    steps = 0
    while nodes <= FIND_MAX_NODES:
        result = run(replace(s, nodes=nodes), template, command)
        print("\n".join(result.lines[3:]), flush=True)
        print(f"{result.last} {'holds' if result.holds else 'does not hold'}", flush=True)
        if result.holds:
            held = (nodes, result)
        else:
            failed = nodes
        if failed is None:
            nodes *= 2
            continue
        low = held[0] if held else 0
        steps += 1
        if steps > 3 or failed - low <= max(1, low // 20):
            break
        nodes = (low + failed) // 2
    if held is None:
        print(f"fleet find: no fleet tried (from {s.nodes} down to {nodes} nodes) held p99 ≤ {GOAL_P99_MS:g} ms")
        print(result.last)
        return 1
    print(f"fleet find: the largest fleet that held is {held[0]} nodes (tried up to {failed or nodes})")
    print(held[1].last)
    return 0


if __name__ == "__main__":
    sys.exit(main())
