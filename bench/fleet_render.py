"""Server time to render the fleet page and the node list API with 10,000 nodes and their findings.

Nodes and findings are inserted in bulk (as if enrolled and evaluated) into a fresh SQLite file and a
fresh PostgreSQL database (dropped afterwards); each request runs in-process through the ASGI app,
so the time is the server's (routing, auth, queries, rendering), without a network.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Sequence

from fastapi.testclient import TestClient
from sqlalchemy import text

from bench.docs import command_line, on_databases, publish
from bench.machine import describe
from central.api.app import create_app
from central.auth import apikeys, sessions, users
from central.config import from_mapping
from central.db.engine import write_tx
from central.db.schema import agents, findings
from central.runtime.service import open_centre

RULES = [(f"rule-{i:02d}", [f"M{(i % 13) + 1:02d}"]) for i in range(22)]  # the shipped policy has 22 rules
GOAL_MS = 300.0
HOW = (
    "How: the state filter, the search and the paging run in SQL (`central/judging/node_states.py`, shared by the API "
    "list, the fleet page and the metrics), and only the page's nodes have their findings counted: looked up "
    "by primary key for a page, or for a page of more than 500 nodes counted in one pass over the primary-key "
    "index (totals) and one over the status index, which holds agent_id since migration 0006 (findings not "
    "passing). The API list is built from plain rows (JSON columns parsed once, times read without conversion) "
    "and serialised by orjson in the worker thread, without FastAPI validating it first (the same bytes), "
    "with Python's cyclic collector paused meanwhile (`central/runtime/gc_pause.py`): it walked the list's 50,000 new "
    "objects for nothing, a third of the time."
)


def _populate(engine: Any, count: int) -> None:
    rng = random.Random(7)
    now = datetime.now(timezone.utc)
    for start in range(0, count, 1000):
        nodes: List[Dict[str, Any]] = []
        rows: List[Dict[str, Any]] = []
        for n in range(start, min(start + 1000, count)):
            agent_id = f"bench{n:08d}"
            nodes.append(
                {
                    "id": agent_id,
                    "hostname": f"node{n:05d}.tenant{n % 40:02d}.example.net",
                    "machine_id": f"{n:032x}",
                    "public_key": f"key{n}",
                    "key_fingerprint": f"fp{n}",
                    "tenant": f"tenant{n % 40:02d}",
                    "labels": {},
                    "enrolled_at": now - timedelta(days=30),
                    "last_report_at": now,
                    "last_heartbeat_at": now,
                    "silent": n % 97 == 0,
                    "ledger_head": "0" * 64,
                }
            )
            for rule, controls in RULES:
                status = rng.choices(("passing", "failing", "stale", "unknown"), (92, 4, 3, 1))[0]
                rows.append(
                    {
                        "agent_id": agent_id,
                        "rule_id": rule,
                        "rule_version": 1,
                        "controls": controls,
                        "severity": "high",
                        "status": status,
                        "observed": {"value": n},
                        "message": f"{rule} is {status}",
                        "since": now,
                        "evaluated_at": now,
                    }
                )
        with write_tx(engine) as conn:
            conn.execute(agents.insert(), nodes)
            conn.execute(findings.insert(), rows)


def _timed(client: TestClient, path: str, headers: Dict[str, str], repeat: int) -> Dict[str, float]:
    client.get(path, headers=headers)  # warm caches and templates
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text[:300]
    return {"median": statistics.median(times), "min": min(times), "max": max(times), "bytes": len(response.content)}


def run(database: str, url: Optional[str], count: int, repeat: int) -> Dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        config = from_mapping(
            {
                "state_dir": tmp,
                "database_url": url or f"sqlite:///{tmp}/central.db",
                "sessions": {"secure_cookie": False},
            },
            "bench",
            {},
        )
        centre = open_centre(config)
        try:
            started = time.monotonic()
            _populate(centre.engine, count)
            if url:  # PostgreSQL: the statistics autovacuum would gather (SQLite keeps none unless told)
                with centre.engine.connect() as conn:
                    conn.execute(text("ANALYZE"))
                    conn.commit()
            fill_s = time.monotonic() - started
            load = os.getloadavg()[0]  # the machine is shared: how busy it was as the requests began
            now = datetime.now(timezone.utc)
            with write_tx(centre.engine) as conn:
                users.create(conn, now, "bench", "bench-admin", "a long bench password 1", "admin", ["*"])
                session = sessions.start(conn, now, config.sessions, users.user_id_of(conn, "bench-admin"), None)
                _, secret = apikeys.create(conn, "bench", now)
            cookie = {"Cookie": f"{sessions.COOKIE}={session.cookie}"}
            key = {"Authorization": f"Bearer {secret}"}
            client = TestClient(create_app(centre, duties=False))
            results = {
                "GET / (fleet page 1, 50 nodes, all counts)": _timed(client, "/", cookie, repeat),
                "GET /?state=failing (filtered)": _timed(client, "/?state=failing", cookie, repeat),
                "GET /?q=node0999 (search)": _timed(client, "/?q=node0999", cookie, repeat),
                "GET /api/v1/nodes?limit=100": _timed(client, "/api/v1/nodes?limit=100", key, repeat),
                "GET /api/v1/nodes?state=failing&limit=100": _timed(
                    client, "/api/v1/nodes?state=failing&limit=100", key, repeat
                ),
                f"GET /api/v1/nodes?limit={count} (full list)": _timed(
                    client, f"/api/v1/nodes?limit={count}", key, max(5, repeat // 2)
                ),
            }
        finally:
            centre.stop()
    return {"database": database, "fill_s": fill_s, "load": load, "results": results}


def render(runs: List[Dict[str, Any]], count: int, command: str) -> str:
    lines = [
        f"{count} nodes, {len(RULES)} findings each ({count * len(RULES)} findings). Median, best and worst of "
        "the runs, ms; the goal is judged on the median.",
        "",
        "| database | request | median ms | best ms | worst ms | response bytes |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in runs:
        for name, t in r["results"].items():
            lines.append(
                f"| {r['database']} | `{name}` | {t['median']:.0f} | {t['min']:.0f} | {t['max']:.0f} | {t['bytes']} |"
            )
    over = [f"{r['database']} `{n}`" for r in runs for n, t in r["results"].items() if t["median"] > GOAL_MS]
    lines += ["", f"Over the goal: {', '.join(over)}." if over else "Every request met the goal."]
    lines += ["", HOW]
    loads = ", ".join(f"{r['database']} {r['load']:.1f}" for r in runs)
    lines += ["", f"Load average (1 min) as the requests began, on {os.cpu_count()} cores: {loads}."]
    lines += ["", f"Command: `{command}`  ", f"Machine: {describe()}"]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args(argv)
    runs = on_databases(args.db, lambda name, url: run(name, url, args.nodes, args.repeat))
    options = (("nodes", args.nodes, 10000), ("repeat", args.repeat, 15), ("db", args.db, "both"))
    command = command_line("bench.fleet_render", options, args.write)
    text = render(runs, args.nodes, command)
    publish("fleet-render", text, args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
