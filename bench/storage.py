"""Storage per node-day: how much the centre's database grows per node and day at the shipped intervals.

Simulated time, real components: ``--nodes`` nodes enrol with their own Ed25519 keys, and each runs
the agent's own schedule (``agent/schedule.py``'s :class:`Schedule` on a virtual clock, with
``config/agent.yaml``'s intervals and jitter), so the number and make-up of reports per day follow
whatever the agent does.  Each report carries the records of the collectors due in that round, taken
from one real ``tillsyn-agent collect --json`` of this machine, with realistic change: every record
gets its own collection time and duration; the time collector's offset differs at every collection
(as on a node whose clock is synchronised); the other records are otherwise unchanged; a share of the nodes
(``--deviating``, at least one) serve telnet on every address for two hours of the day, then stop.
Heartbeats go every 60 s.  Everything passes the centre's ingest functions (request signature, each
report's signature, parsing, storing and chaining: ``central/ingest/receive.py``) at the simulated
time, five simulated minutes' worth to a transaction (as the group writer gathers them); the
evaluator judges the queue every five simulated minutes and the duty round (silence, staleness,
incidents; retention off) runs every fifteen.

The database is measured compacted (SQLite: ``VACUUM``, then page counts per table and index from
``dbstat``; PostgreSQL: ``VACUUM FULL``, then ``pg_table_size`` and ``pg_indexes_size``), once after
the first simulated hour (every node's findings and latest evidence exist by then) and at the end; the
growth between the two, per node and simulated day, is the figure.

    .venv/bin/python -m bench.storage --db sqlite --nodes 5 --days 0.5     # under a minute per database
"""

from __future__ import annotations

import argparse
import base64
import heapq
import json
import math
import random
import sqlite3
import tempfile
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select, text

from agent.config import AgentConfig
from agent.config import load as load_agent_config
from agent.schedule import Schedule
from bench.docs import command_line, on_databases, publish
from bench.load_nodes import capture_template
from bench.machine import describe
from central.config import from_mapping
from central.db import report_bodies
from central.db.engine import read_tx, write_tx
from central.db.schema import evidence_blobs, finding_changes, incidents, reports
from central.enrolment import EnrolRequest, create_token, enrol
from central.ingest.receive import (
    CheckedBeat,
    authenticate,
    parse_signed,
    prepare_heartbeat,
    store_heartbeats,
    store_reports,
    unpack_reports,
)
from central.runtime.duties import run_once
from central.runtime.service import Centre, open_centre
from evidence.model import Evidence
from evidence.signing import new_private_key, public_key_text, sign, verify
from evidence.wire import Heartbeat, Report, canonical

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
DAY_S = 86400.0
WARM_S = 3600.0
"""The first simulated hour is not counted: by its end every node's findings and latest evidence exist."""
HEARTBEAT_S = 60.0
JUDGE_S = 300.0
DUTY_S = 900.0
DEVIATION_S = 7200.0
GOAL_KB = 200.0
FLEETS = (1_000, 10_000, 50_000)
GROUPS = {
    "reports (ledger)": ("reports", "evidence_blobs", "pending_evaluation", "ledger_checkpoints"),
    "findings": ("findings",),
    "finding_changes": ("finding_changes",),
    "incidents": ("incidents", "incident_events", "outbox"),
    "latest_evidence": ("latest_evidence",),
}
"""Columns of the table (by database table); every other table (agents, audit, ...) counts as "other"."""


@dataclass
class SimNode:
    index: int
    key: Ed25519PrivateKey = field(default_factory=new_private_key)
    agent_id: str = ""
    seq: int = 0
    hb_seq: int = 0
    schedule: Schedule = field(default_factory=Schedule)
    deviates: Optional[Tuple[float, float]] = None
    """The simulated seconds between which this node has an unexpected port open."""


TELNET = {
    "protocol": "tcp",
    "family": "ipv4",
    "address": "0.0.0.0",
    "port": 23,
    "exposure": "all",
    "address_scope": "unspecified",
    "process": {"pid": 4242, "name": "inetutils-telnetd", "exe": "/usr/sbin/telnetd", "user": "root", "unit": None},
    "other_pids": [],
    "services": ["telnet"],
    "tags": ["plaintext_remote"],
}


def _deviated(record: Evidence) -> Evidence:
    """The ports collector's record with a telnet server listening on every address (the policy's
    ports-no-plaintext-remote fails, and an incident opens until it is gone)."""
    observed = json.loads(json.dumps(record.observed))
    observed["sockets"] = [*observed.get("sockets", []), TELNET]
    return replace(record, observed=observed)


class Simulation:
    def __init__(self, centre: Centre, template: Sequence[Evidence], config: AgentConfig, args: Any) -> None:
        self.centre = centre
        self.template = {record.collector: record for record in template}
        self.config = config
        self.rng = random.Random(20)
        random.seed(20)  # the agent's schedule draws its jitter from the global generator
        self.start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=args.days)
        self.nodes = [SimNode(i) for i in range(args.nodes)]
        for node in self.nodes[: math.ceil(args.nodes * args.deviating)]:
            begin = self.rng.uniform(WARM_S, args.days * DAY_S - DEVIATION_S)
            node.deviates = (begin, begin + DEVIATION_S)
        self.reports = 0
        self.report_bytes = 0
        self.heartbeats = 0
        self.pending: List[Tuple[SimNode, bytes, str, float]] = []
        self.beats: List[Tuple[List[CheckedBeat], datetime]] = []

    def at(self, t: float) -> datetime:
        return self.start + timedelta(seconds=t)

    def enrol_all(self) -> None:
        now = self.at(0)
        with write_tx(self.centre.engine) as conn:
            secret = create_token(conn, now, ttl=timedelta(hours=1), max_uses=len(self.nodes)).secret
            for node in self.nodes:
                request = EnrolRequest(
                    secret, f"node{node.index:05d}.example.net", uuid.uuid4().hex, public_key_text(node.key), "bench"
                )
                node.agent_id = str(enrol(conn, request, now)["agent_id"])

    def _records(self, node: SimNode, names: List[str], t: float) -> Tuple[Evidence, ...]:
        out = []
        for name in names:
            record = self.template.get(name)
            if record is None:
                continue
            if name == "ports" and node.deviates and node.deviates[0] <= t < node.deviates[1]:
                record = _deviated(record)
            if name == "time":
                record = self._drifted(record, t)
            duration = round(record.duration_ms * self.rng.uniform(0.8, 1.25), 3)
            out.append(replace(record, collected_at=self.at(t), duration_ms=duration))
        return tuple(out)

    def _drifted(self, record: Evidence, t: float) -> Evidence:
        """The time collector's record as on a synchronised node: its offset differs at every collection."""
        offset = round(self.rng.gauss(0.0, 0.002), 6)
        synced = (self.at(t) - timedelta(seconds=self.rng.uniform(0, 64))).strftime("%Y-%m-%dT%H:%M:%SZ")
        observed = json.loads(json.dumps(record.observed))
        observed.update(synchronised=True, offset_s=offset, offset_abs_s=abs(offset), last_sync_at=synced)
        for daemon in observed.get("daemons", [])[:1]:  # the first daemon is the one that synchronises
            daemon.update(running=True, synchronised=True, offset_s=offset, last_sync_at=synced)
        return replace(record, observed=observed)

    def report(self, node: SimNode, names: List[str], t: float) -> None:
        """Sign a report as the agent does and pass it through the centre's ingest at simulated time ``t``."""
        evidence = self._records(node, names, t)
        if not evidence:
            return
        node.seq += 1
        raw = canonical(Report(node.agent_id, uuid.uuid4().hex, node.seq, self.at(t), "bench", evidence).to_dict())
        batch = json.dumps(
            {"reports": [{"body": base64.b64encode(raw).decode(), "signature": sign(node.key, raw)}]}
        ).encode()
        self.pending.append((node, batch, sign(node.key, batch), t))
        self.reports += 1
        self.report_bytes += len(raw)

    def flush(self) -> None:
        """Store the reports of the last simulated minute, in one transaction as the group writer would."""
        limits = self.centre.config.limits
        with write_tx(self.centre.engine) as conn:
            for beats, now in self.beats:
                store_heartbeats(conn, beats, now)
            for node, batch, signature, t in self.pending:
                agent = authenticate(conn, node.agent_id, signature, batch)
                signed = unpack_reports(batch, limits)
                for item in signed:
                    verify(agent["public_key"], item.raw, item.signature)
                stored = store_reports(conn, agent, parse_signed(signed, node.agent_id), limits, self.at(t))
                self.centre.parsed.put(stored.parsed)
        self.pending, self.beats = [], []

    def heartbeats_at(self, t: float) -> None:
        now = self.at(t)
        beats = []
        for node in self.nodes:
            node.hb_seq += 1
            body = canonical(Heartbeat(node.agent_id, node.hb_seq, now, spool_depth=0).to_dict())
            verify(public_key_text(node.key), body, sign(node.key, body))
            beats.append(
                CheckedBeat(
                    prepare_heartbeat(body, node.agent_id, self.centre.config.limits, now), public_key_text(node.key)
                )
            )
        self.beats.append((beats, now))
        self.heartbeats += len(beats)

    def duties(self, t: float) -> None:
        self.flush()
        self.centre.evaluate()
        config = self.centre.config
        run_once(
            self.centre.engine,
            self.centre.policy,
            config.silent_threshold_s,
            now=self.at(t),
            alerting=config.alerting,
            retention=None,
            measures=config.measures,
            reports_days=config.retention.reports_days,
        )

    def run(self, end_s: float, on_warm: Any) -> None:
        names = [n for n, c in self.config.collectors.items() if c.enabled]
        queue: List[Tuple[float, int]] = []
        for node in self.nodes:
            first = self.rng.uniform(0, 300)
            node.schedule.enable(names, first)
            heapq.heappush(queue, (first, node.index))
        ticks = {"heartbeat": HEARTBEAT_S, "judge": JUDGE_S, "duty": DUTY_S}
        next_tick = dict(ticks)
        warm = False
        while queue and queue[0][0] < end_s:
            t, index = heapq.heappop(queue)
            for kind in ("heartbeat", "judge", "duty"):
                while next_tick[kind] <= t:
                    self._tick(kind, next_tick[kind])
                    next_tick[kind] += ticks[kind]
            if not warm and t >= WARM_S:
                self.flush()
                self.centre.evaluate()
                on_warm()
                warm = True
            node = self.nodes[index]
            due = node.schedule.take_due(self.config, t, set())
            if due:
                self.report(node, due, t)
            heapq.heappush(queue, (max(min(node.schedule.wake_times(t)), t + 0.001), index))
        self.duties(end_s)

    def _tick(self, kind: str, t: float) -> None:
        if kind == "heartbeat":
            self.heartbeats_at(t)
        elif kind == "judge":
            self.flush()
            self.centre.evaluate()
        else:
            self.duties(t)


def _sqlite_sizes(centre: Centre) -> Dict[str, Dict[str, int]]:
    """Bytes per table: its own pages and its indexes' pages (after VACUUM)."""
    conn = sqlite3.connect(str(centre.engine.url.database), isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
        owner = dict(conn.execute("SELECT name, tbl_name FROM sqlite_master").fetchall())
        sizes: Dict[str, Dict[str, int]] = {}
        for name, size in conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall():
            table = owner.get(name, name)
            kind = "data" if name == table else "indexes"
            sizes.setdefault(table, {"data": 0, "indexes": 0})[kind] += int(size)
    finally:
        conn.close()
    return sizes


def _pg_sizes(centre: Centre) -> Dict[str, Dict[str, int]]:
    with centre.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM FULL ANALYZE"))
        rows = conn.execute(
            text(
                "SELECT relname, pg_table_size(c.oid), pg_indexes_size(c.oid) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'"
            )
        ).all()
    return {name: {"data": int(data), "indexes": int(indexes)} for name, data, indexes in rows}


def sizes(centre: Centre) -> Dict[str, Dict[str, int]]:
    return _sqlite_sizes(centre) if centre.engine.dialect.name == "sqlite" else _pg_sizes(centre)


def grouped(per_table: Dict[str, Dict[str, int]]) -> Dict[str, int]:
    """Bytes per reported group: the groups' tables' data, every table's indexes together, the rest as "other"."""
    out = {group: 0 for group in GROUPS}
    out.update({"indexes": 0, "other": 0})
    placed = {table: group for group, tables in GROUPS.items() for table in tables}
    for table, size in per_table.items():
        out[placed.get(table, "other")] += size["data"]
        out["indexes"] += size["indexes"]
    return out


@dataclass
class Result:
    database: str
    nodes: int
    days: float
    reports: int
    heartbeats: int
    report_bytes: int
    growth: Dict[str, float]
    ledger: Dict[str, float]
    """Bytes per node and day of the ledger's tables: data and indexes of each."""
    """Bytes per node and day, by group."""
    standing: Dict[str, float]
    """Bytes per node after the first hour, by group (what a node costs whatever its age)."""
    seconds: float
    verify_problems: int
    rows: Dict[str, int]

    @property
    def per_node_day(self) -> float:
        return sum(self.growth.values())


def run(database: str, url: Optional[str], args: Any, template: Sequence[Evidence]) -> Result:
    started = time.perf_counter()
    config = load_agent_config(ROOT / "config" / "agent.yaml", required=True)
    with tempfile.TemporaryDirectory() as tmp:
        centre = open_centre(
            from_mapping({"state_dir": tmp, "database_url": url or f"sqlite:///{tmp}/central.db"}, "bench", {})
        )
        try:
            sim = Simulation(centre, template, config, args)
            sim.enrol_all()
            before: Dict[str, int] = {}
            tables_before: Dict[str, Dict[str, int]] = {}

            def on_warm() -> None:
                tables_before.update(sizes(centre))
                before.update(grouped(tables_before))

            sim.run(args.days * DAY_S, on_warm)
            tables_after = sizes(centre)
            after = grouped(tables_after)
            from central.ingest.ledger_check import verify_store

            _, problems = verify_store(centre.engine)
            with read_tx(centre.engine) as conn:
                rows = {
                    name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                    for name, table in (
                        ("incidents", incidents),
                        ("finding changes", finding_changes),
                        ("pieces", evidence_blobs),
                    )
                }
                head = func.substr(reports.c.body, 1, len(report_bodies.MAGIC3))
                for name, magic in (("tsk3 bodies", report_bodies.MAGIC3), ("tsk2 bodies", report_bodies.MAGIC2)):
                    count = select(func.count()).select_from(reports).where(head == magic)
                    rows[name] = int(conn.execute(count).scalar_one())
        finally:
            centre.stop()
    node_days = args.nodes * (args.days * DAY_S - WARM_S) / DAY_S
    return Result(
        database,
        args.nodes,
        args.days,
        sim.reports,
        sim.heartbeats,
        sim.report_bytes,
        {k: (after[k] - before.get(k, 0)) / node_days for k in after},
        {
            f"{table} {kind}": (tables_after.get(table, {}).get(kind, 0) - tables_before.get(table, {}).get(kind, 0))
            / node_days
            for table in ("reports", "evidence_blobs")
            for kind in ("data", "indexes")
            if table in tables_after
        },
        {k: before.get(k, 0) / args.nodes for k in after},
        time.perf_counter() - started,
        len(problems),
        rows,
    )


def _kb(value: float) -> str:
    return f"{value / 1000:,.1f}"


def section(r: Result, args: Any, retention_days: int) -> str:
    """The Markdown of one database's run (docs/benchmarks.md keeps one per database)."""
    lines = [
        f"### {r.database}",
        "",
        f"Command: `{command_line('bench.storage', _options(args, r.database), args.write)}`  ",
        f"Machine: {describe()}",
        "",
    ]
    per_day = r.reports / (r.nodes * r.days)
    lines += [
        f"{r.nodes} nodes, {r.days:g} simulated day(s): {r.reports:,} reports ({per_day:,.0f} per node-day, "
        f"{r.report_bytes / max(r.reports, 1):,.0f} bytes each as signed), {r.heartbeats:,} heartbeats; "
        f"{r.rows['incidents']} incident(s) and {r.rows['finding changes']} finding change(s) in all; "
        f"`verify`: {'intact' if r.verify_problems == 0 else f'{r.verify_problems} problem(s)'}; "
        f"run took {r.seconds:,.0f} s.",
        "",
        "| table | growth, KB per node-day | standing, KB per node |",
        "|---|---:|---:|",
    ]
    for group in r.growth:
        lines.append(f"| {group} | {_kb(r.growth[group])} | {_kb(r.standing[group])} |")
    total = r.per_node_day
    verdict = "met" if total <= GOAL_KB * 1000 else "not met"
    ledger = ", ".join(f"{name} {_kb(size)}" for name, size in r.ledger.items())
    lines += [
        f"| **total** | **{_kb(total)}** | {_kb(sum(r.standing.values()))} |",
        "",
        f"The ledger's growth by table, KB per node-day: {ledger}.",
        "",
        f"Goal ≤ {GOAL_KB:.0f} KB per node-day: {verdict} ({_kb(total)} KB). "
        f"With the shipped retention of raw reports ({retention_days} days):",
        "",
        "| nodes | database after the retention period |",
        "|---:|---:|",
    ]
    for fleet in FLEETS:
        size = fleet * (total * retention_days + sum(r.standing.values()))
        lines.append(f"| {fleet:,} | {size / 1e9:,.1f} GB |")
    lines.append("")
    return "\n".join(lines).rstrip("\n")


def _options(args: Any, database: str) -> List[Tuple[str, Any, Any]]:
    return [
        ("db", database.lower(), "both"),
        ("nodes", args.nodes, 5),
        ("days", args.days, 0.5),
        ("deviating", args.deviating, 0.2),
    ]


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.storage", description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--days", type=float, default=0.5)
    parser.add_argument("--deviating", type=float, default=0.2, help="share of nodes that deviate for two hours")
    parser.add_argument("--write", action="store_true", help="also put the section in docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.nodes < 1 or args.days * DAY_S <= WARM_S + DEVIATION_S:
        parser.error("--nodes must be at least 1 and --days longer than three hours")
    template = capture_template(BIN / "tillsyn-agent", ROOT / "config" / "agent.yaml")
    results = on_databases(args.db, lambda name, url: run(name, url, args, template))
    from central.config import Retention

    for r in results:
        publish(f"storage-{r.database.lower()}", section(r, args, Retention().reports_days), args.write)
    for r in results:
        print(
            f"storage: db={r.database} nodes={r.nodes} days={r.days:g} reports={r.reports} "
            f"bytes_per_node_day={r.per_node_day:.0f} verify_problems={r.verify_problems}"
        )


if __name__ == "__main__":
    main()
