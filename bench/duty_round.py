"""The background duty round with a large fleet: its CPU and wall time, every ``duty_interval_s``.

Each centre process runs the round every 10 s beside the requests it answers: silent nodes, stale
findings, then the incident round (open, resolve, remind).  Its CPU is taken from the same
interpreter that answers agents, so a round's cost shows as a burst in the requests' latency
(docs/benchmarks.md, the centre under load).  Nodes and findings are inserted in bulk as for the
fleet page (``bench.fleet_render``); the first round opens an incident for every failing finding
and queues its notification (one webhook channel, every incident routed to it), and the rounds after
it, the steady state, find nothing new and remind no one yet.  Times are ``time.process_time()`` of
this process (the centre's own work; PostgreSQL's backends are not counted) and wall time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

from sqlalchemy import Table, func, select, text

from bench.docs import command_line, on_databases, publish
from bench.fleet_render import _populate
from bench.machine import describe
from central.config import from_mapping
from central.db.engine import read_tx
from central.db.schema import incidents, outbox
from central.runtime.service import open_centre


def _count(centre: Any, table: Table, *where: Any) -> int:
    with read_tx(centre.engine) as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def _timed_round(centre: Any) -> Dict[str, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    centre.run_duties()
    return {"cpu_ms": (time.process_time() - cpu) * 1000, "wall_ms": (time.perf_counter() - wall) * 1000}


def run(database: str, url: Optional[str], count: int, rounds: int) -> Dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        config = from_mapping(
            {
                "state_dir": tmp,
                "database_url": url or f"sqlite:///{tmp}/central.db",
                # every failing finding opens its incident in the first round, routed to a channel as on a
                # real centre: the round writes the outbox and, later, reads it to decide on reminders
                # (nothing is sent: no dispatcher runs here)
                "alerting": {
                    "open_after_s": 0,
                    "channels": {"oncall": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}},
                    "routes": [{"match": {}, "channels": ["oncall"]}],
                },
            },
            "bench",
            {},
        )
        centre = open_centre(config)
        try:
            _populate(centre.engine, count)
            if url:  # PostgreSQL: the statistics autovacuum would gather
                with centre.engine.connect() as conn:
                    conn.execute(text("ANALYZE"))
                    conn.commit()
            first = _timed_round(centre)
            opened, queued = _count(centre, incidents, incidents.c.status == "open"), _count(centre, outbox)
            steady = [_timed_round(centre) for _ in range(rounds)]
        finally:
            centre.stop()
    return {
        "database": database,
        "first": first,
        "open": opened,
        "queued": queued,
        "steady": steady,
        "interval_s": config.duty_interval_s,
    }


def render(runs: List[Dict[str, Any]], count: int, command: str, load: float) -> str:
    lines = [
        f"{count} nodes with 22 findings each, some failing; the first round opens their incidents, the rounds "
        "after it find nothing new (median and worst of the steady rounds).",
        "",
        "| database | open incidents | notifications queued | first round CPU / wall ms "
        "| steady round CPU ms, median (worst) | steady round wall ms, median (worst) "
        "| share of one core at one round per interval |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        cpu = [s["cpu_ms"] for s in r["steady"]]
        wall = [s["wall_ms"] for s in r["steady"]]
        share = statistics.median(cpu) / (r["interval_s"] * 1000)
        lines.append(
            f"| {r['database']} | {r['open']:,} | {r['queued']:,} "
            f"| {r['first']['cpu_ms']:,.0f} / {r['first']['wall_ms']:,.0f} "
            f"| {statistics.median(cpu):.1f} ({max(cpu):.1f}) | {statistics.median(wall):.1f} ({max(wall):.1f}) "
            f"| {share:.2%} (every {r['interval_s']:g} s) |"
        )
    lines += ["", f"Load average (1 min) when the run began, on {os.cpu_count()} cores: {load:.1f}."]
    lines += ["", f"Command: `{command}`  ", f"Machine: {describe()}"]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    runs = on_databases(args.db, lambda name, url: run(name, url, args.nodes, args.rounds))
    options = (("nodes", args.nodes, 2000), ("rounds", args.rounds, 7), ("db", args.db, "both"))
    command = command_line("bench.duty_round", options, args.write)
    text_out = render(runs, args.nodes, command, load)
    publish("duty-round", text_out, args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
