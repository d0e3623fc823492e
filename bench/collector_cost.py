"""Cost of single collectors inside one process: wall and CPU time per run, imports excluded.

The one-shot ``collect`` footprint (``bench.collect_footprint``) is dominated by interpreter
start-up and imports; the daemon pays those once.  This harness imports everything, then runs
each named collector ``--runs`` times with the shipped settings on this machine (the daemon's
way: the state directory given, a baseline kept) and reports the first run and the median and
worst of the later ones.  With ``--write`` it replaces its section of docs/benchmarks.md.

    .venv/bin/python -m bench.collector_cost --runs 20 --write
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from bench.docs import replace_section
from bench.machine import describe

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ("accounts", "sshd", "file_integrity")


def _one(name: str, state: Path) -> Tuple[float, float]:
    from agent.config import load
    from collectors import REGISTRY
    from collectors.base import Context

    config = load(ROOT / "config" / "agent.yaml", required=True)
    ctx = Context(state_dir=state, keep_state=True).with_settings(config.collectors[name].settings)
    wall, before = time.perf_counter(), _cpu()
    REGISTRY[name].collect(ctx)
    return time.perf_counter() - wall, _cpu() - before


def _cpu() -> float:
    """User and system time of this process and of the commands it ran and waited for (sshd -T)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--only", action="append", help="a collector (repeatable); default: the M05/M09 three")
    parser.add_argument("--full", type=int, default=5, help="runs of the whole `collect --json` (a new process each)")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args(argv)
    names = args.only or list(DEFAULT)
    rows: List[str] = []
    with tempfile.TemporaryDirectory() as state:
        for name in names:
            first = _one(name, Path(state))
            later = [_one(name, Path(state)) for _ in range(args.runs)]
            wall = [w for w, _ in later]
            cpu = [c for _, c in later]
            rows.append(
                f"| `{name}` | {first[0] * 1000:.1f} / {first[1] * 1000:.1f} "
                f"| {statistics.median(wall) * 1000:.1f} ({max(wall) * 1000:.1f}) "
                f"| {statistics.median(cpu) * 1000:.1f} ({max(cpu) * 1000:.1f}) |"
            )
    from bench.collect_footprint import GOALS, series

    full = series(["agent.cli", "--config", str(ROOT / "config" / "agent.yaml"), "collect", "--json"], args.full)
    medians = {k: statistics.median(getattr(r, k) for r in full) for k in GOALS}
    verdict = "; ".join(
        f"{k.replace('_', ' ')} {medians[k]:.3g} (goal {g:g}: {'met' if medians[k] <= g else 'MISSED'})"
        for k, g in GOALS.items()
    )
    lines = [
        f"Command: `.venv/bin/python -m bench.collector_cost --runs {args.runs} --full {args.full}"
        f"{''.join(f' --only {n}' for n in args.only or [])} --write` as "
        f"{'root' if os.geteuid() == 0 else 'an unprivileged user'}, shipped `config/agent.yaml`, "
        f"{time.strftime('%Y-%m-%d')}.",
        f"Machine: {describe()}.",
        "",
        "In one process, imports done; the first run (file_integrity: makes its baseline), then the median",
        "(worst) of the later runs.",
        "",
        "| collector | first run wall / CPU ms | later wall ms | later CPU ms |",
        "|---|---|---|---|",
        *rows,
        "",
        "CPU includes the commands a collector runs (`sshd -T`). The whole `collect --json` with every",
        f"collector ({len(full)} runs, a new process each, median): {verdict}.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        replace_section(ROOT / "docs" / "benchmarks.md", "collector-cost", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
