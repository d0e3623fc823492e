"""Load on a running centre: sustained reports/s and heartbeats/s, p50/p99, beside ``/livez``.

Starts ``tillsyn-central serve`` as a real subprocess on 127.0.0.1 (SQLite in a
temporary state directory, then a fresh PostgreSQL database), enrols ``--nodes``
nodes through the API with a token from ``tillsyn-central token create``, and per
database measures, in this order:

1. ``GET /livez`` (no database) in a closed loop: the framework's ceiling here (measured again
   at the end, and the faster of the two runs is the ceiling);
2. every node's first report (which turns every verdict from stale), then the
   steady state: reports, then heartbeats, in a closed loop: the peak rate;
3. reports, then heartbeats, in an open loop at half that peak (for reports, half the rate at which
   they were judged as well as acknowledged): p50/p99 latency;
4. a redelivery of some acknowledged reports (must come back as duplicates);

after every report phase it waits until the centre has judged every acknowledged
report (the evaluation after ingest) and charges the phase for that time and CPU;

then counts the stored rows per node against what was sent and acknowledged and
runs ``tillsyn-central verify``.  Every message is signed before its phase.

    .venv/bin/python -m bench.ingest_load --write        # both databases, about 2.5 minutes
    .venv/bin/python -m bench.ingest_load --quick        # a smoke run, about 40 s
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from bench import load_floor, load_nodes
from bench.load_drain import Drain, drain
from bench.load_http import Request
from bench.load_phases import Phase, closed_loop, open_loop, sequential
from bench.load_profile import Sampler, summary
from bench.load_server import BIN, ROOT, Centre, pg_database
from bench.load_verify import Check, Ledger, check
from evidence.model import Evidence

CONCURRENCY = 32
"""Connections in the closed loops.  A fleet keeps many open at once; with 8 the heartbeat peak was set by
each request's wait for its batch's commit (the machine 40 % idle); 64 carried no more than 32."""


@dataclass
class Settings:
    nodes: int
    concurrency: int
    duration_s: float
    probe_s: float
    py_spy: Optional[Path] = None


@dataclass
class DbRun:
    database: str
    phases: Dict[str, Phase] = field(default_factory=dict)
    drains: Dict[str, Drain] = field(default_factory=dict)
    check: Optional[Check] = None
    redelivered: int = 0
    redelivery_wrong: List[str] = field(default_factory=list)
    refused: int = 0
    profile: List[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.check is not None and self.check.clean and not self.redelivery_wrong and not self.refused


def _enrol(centre: Centre, count: int) -> List[load_nodes.Node]:
    token = centre.cli("token", "create", "--uses", str(count), "--ttl", "2h", "--note", "bench").split()[0]
    nodes = [load_nodes.Node(i) for i in range(count)]
    answers = sequential("127.0.0.1", centre.port, [n.enrolment(token) for n in nodes])
    for node, (status, body) in zip(nodes, answers):
        if status != 200:
            raise SystemExit(f"enrolment of {node.hostname} refused: {status} {body.decode(errors='replace')}")
        node.agent_id = json.loads(body)["agent_id"]
    return nodes


def _peak(
    kind: str, centre: Centre, nodes: List[load_nodes.Node], template: Sequence[Evidence], s: Settings
) -> Tuple[Phase, Phase]:
    """A short probe (also the warm-up) sizes the pre-signed pool of the timed closed loop."""

    def timed(name: str, pool: Sequence[Request], duration_s: float) -> Phase:
        return closed_loop(
            name,
            "127.0.0.1",
            centre.port,
            pool,
            nodes=len(nodes),
            concurrency=s.concurrency,
            duration_s=duration_s,
            sample=centre.sample,
            keep=kind == "report",
        )

    probe = timed(f"{kind} probe", load_nodes.round_robin(nodes, 3 * len(nodes), kind, template), s.probe_s)
    if kind == "report":
        drain(centre.port, centre.sample)  # the peak starts with nothing left to judge
    budget = math.ceil(max(probe.rate, 1.0) * s.duration_s * 1.6) + len(nodes)
    pool = load_nodes.round_robin(nodes, budget, kind, template)
    sampler = None
    if s.py_spy is not None:
        assert centre.proc is not None
        sampler = Sampler(s.py_spy, centre.proc.pid, centre.state / f"py-spy-{kind}.txt")
    peak = timed(f"{kind} peak", pool, s.duration_s)
    if sampler is not None:
        sampler.stop()
    return probe, peak


def _livez(name: str, centre: Centre, s: Settings) -> Phase:
    return closed_loop(
        name,
        "127.0.0.1",
        centre.port,
        load_nodes.livez(10**7),
        nodes=0,
        concurrency=s.concurrency,
        duration_s=s.duration_s,
        sample=centre.sample,
    )


def _first_reports(centre: Centre, nodes: List[load_nodes.Node], template: Sequence[Evidence]) -> Phase:
    """Each node's first report: every verdict of the node changes (stale to passing or failing)."""
    return closed_loop(
        "report first",
        "127.0.0.1",
        centre.port,
        load_nodes.round_robin(nodes, len(nodes), "report", template),
        nodes=len(nodes),
        concurrency=8,
        duration_s=600,
        sample=centre.sample,
        keep=True,
    )


def _half(
    kind: str, centre: Centre, nodes: List[load_nodes.Node], template: Sequence[Evidence], s: Settings, peak: float
) -> Phase:
    rate = max(peak / 2, 1.0)
    pool = load_nodes.round_robin(nodes, math.ceil(rate * s.duration_s) + 1, kind, template)
    return open_loop(
        f"{kind} half",
        "127.0.0.1",
        centre.port,
        pool,
        nodes=len(nodes),
        rate=rate,
        duration_s=s.duration_s,
        sample=centre.sample,
        keep=kind == "report",
    )


def _redeliver(centre: Centre, run: DbRun, phase: Phase, count: int) -> None:
    """At-least-once delivery: acknowledged reports sent again must be acknowledged, not stored."""
    sample = [(r, b) for r, status, b in phase.answers if status == 200][:count]
    answers = sequential("127.0.0.1", centre.port, [r.data for r, _ in sample], concurrency=4)
    for (request, _), (status, body) in zip(sample, answers):
        data = json.loads(body) if status == 200 else {}
        if data.get("duplicates") != [request.report_id] or data.get("stored") != []:
            run.redelivery_wrong.append(f"{status} {body[:200].decode(errors='replace')}")
    run.redelivered = len(sample)


def run_database(database: str, template: Sequence[Evidence], s: Settings) -> DbRun:
    run = DbRun(database)
    with ExitStack() as stack:
        state = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tillsyn-bench-")))
        url = stack.enter_context(pg_database()) if database == "postgresql" else None
        centre = Centre(state, url)
        nodes = _enrol_started(centre, stack, s.nodes)
        ledger = Ledger()
        run.phases["livez"] = _livez("livez", centre, s)
        first = _first_reports(centre, nodes, template)
        run.phases["report first"] = first
        run.drains["report first"] = drain(centre.port, centre.sample)
        ledger.add(first.answers)
        for kind in ("report", "heartbeat"):
            probe, peak = _peak(kind, centre, nodes, template, s)
            run.phases[f"{kind} peak"] = peak
            sustained = peak.rate
            if kind == "report":
                run.drains["report peak"] = drain(centre.port, centre.sample)
                # sustained means judged too: acknowledging can outrun the evaluator for a while
                sustained = run.drains["report peak"].end_to_end(peak)
            run.phases[f"{kind} half"] = _half(kind, centre, nodes, template, s, sustained)
            if kind == "report":
                run.drains["report half"] = drain(centre.port, centre.sample)
            for phase in (probe, peak, run.phases[f"{kind} half"]):
                if kind == "report":
                    ledger.add(phase.answers)
                else:  # only refusals are kept
                    ledger.refused += [f"{st} {b[:200].decode(errors='replace')}" for _, st, b in phase.answers]
        _redeliver(centre, run, run.phases["report peak"], max(10, s.nodes // 4))
        # the ceiling again, after the ingest phases: the machine's own pace moves within a run
        run.phases["livez after"] = _livez("livez after", centre, s)
        centre.stop()
        run.check = check(centre, [n.agent_id for n in nodes], ledger)
        run.refused = len(ledger.refused)
        if ledger.refused:
            print(f"{database}: {len(ledger.refused)} refused, first: {ledger.refused[0]}", file=sys.stderr)
        if s.py_spy is not None:
            run.profile = _profile_lines(database, state)
    return run


def _profile_lines(database: str, state: Path) -> List[str]:
    lines = []
    for kind in ("report", "heartbeat"):
        total, top = summary(state / f"py-spy-{kind}.txt")
        lines.append(f"{database}, {kind} peak: {total} busy samples of the centre's threads; inclusive share:")
        lines += [f"  {count / max(total, 1):6.1%}  {frame}" for frame, count in top]
    return lines


def _enrol_started(centre: Centre, stack: ExitStack, count: int) -> List[load_nodes.Node]:
    centre.cli("db", "upgrade")
    centre.start(duties=True)
    stack.callback(centre.stop)
    return _enrol(centre, count)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer nodes, short phases (a smoke run)")
    parser.add_argument("--nodes", type=int, help="simulated nodes (default 200, quick 40)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=CONCURRENCY,
        help=f"connections in the closed loops (default {CONCURRENCY})",
    )
    parser.add_argument("--duration", type=float, help="seconds per timed phase (default 8, quick 2)")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--py-spy", type=Path, metavar="PATH", help="profile the centre in the peak phases")
    args = parser.parse_args(argv)
    s = Settings(
        nodes=args.nodes or (40 if args.quick else 200),
        concurrency=args.concurrency,
        duration_s=args.duration or (2.0 if args.quick else 8.0),
        probe_s=1.0 if args.quick else 2.0,
        py_spy=args.py_spy,
    )
    started = time.monotonic()
    load = os.getloadavg()[0]
    template = load_nodes.capture_template(BIN / "tillsyn-agent", ROOT / "config" / "agent.yaml")
    floor = load_floor.measure(template)  # first, while no centre runs beside it
    runs = [run_database(db, template, s) for db in (["sqlite", "postgresql"] if args.db == "both" else [args.db])]
    from bench.load_report import render

    text = render(runs, floor, template, s, argv_text(args), load, time.monotonic() - started)
    print(text)
    for run in runs:
        print("\n".join(run.profile))
    if args.write:
        from bench.docs import replace_section

        replace_section(ROOT / "docs" / "benchmarks.md", "centre-ingest", text)
    return 0 if all(r.clean for r in runs) else 1


def argv_text(args: argparse.Namespace) -> str:
    parts = [".venv/bin/python -m bench.ingest_load"]
    if args.quick:
        parts.append("--quick")
    for flag in ("nodes", "duration"):
        if getattr(args, flag) is not None:
            parts.append(f"--{flag} {getattr(args, flag):g}")
    if args.concurrency != CONCURRENCY:
        parts.append(f"--concurrency {args.concurrency}")
    if args.db != "both":
        parts.append(f"--db {args.db}")
    if args.write:
        parts.append("--write")
    if args.py_spy is not None:
        parts.append("--py-spy PATH")
    return " ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
