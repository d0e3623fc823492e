"""Footprint of ``tillsyn-agent collect``: wall time, CPU time and peak RSS per run.

Runs the real command as a child process (interpreter start-up included, as a
sysadmin would see it) ``--runs`` times for the full collection and for each
collector alone, and reports the median and the worst run.  With ``--write`` it
replaces its section of docs/benchmarks.md.

    .venv/bin/python -m bench.collect_footprint --runs 15 --write
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

from bench.docs import replace_section
from bench.machine import describe

ROOT = Path(__file__).resolve().parents[1]
GOALS = {"wall_s": 0.5, "cpu_s": 0.25, "rss_mb": 45.0}


@dataclass
class Run:
    wall_s: float
    cpu_s: float
    rss_mb: float


def measure(argv: Sequence[str]) -> Run:
    """One run of ``python -m bench.child MODULE ARGS``: wall, CPU and the child's own peak RSS."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.child", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT
    )
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed with status {status}: {err}")
    peak = next(int(line.split()[1]) for line in err.splitlines() if line.startswith("VmHWM"))
    return Run(wall, usage.ru_utime + usage.ru_stime, peak / 1024)


def series(argv: Sequence[str], runs: int) -> List[Run]:
    measure(argv)  # warm the page cache and .pyc files
    return [measure(argv) for _ in range(runs)]


def row(label: str, results: List[Run]) -> str:
    def med(attr: str) -> float:
        return float(statistics.median(getattr(r, attr) for r in results))

    def worst(attr: str) -> float:
        return float(max(getattr(r, attr) for r in results))

    return (
        f"| {label} | {med('wall_s') * 1000:.0f} ({worst('wall_s') * 1000:.0f}) "
        f"| {med('cpu_s') * 1000:.0f} ({worst('cpu_s') * 1000:.0f}) "
        f"| {med('rss_mb'):.1f} ({worst('rss_mb'):.1f}) |"
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--config", default=str(ROOT / "config" / "agent.yaml"))
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args(argv)
    # Installed packages ship compiled bytecode (dh_python3 byte-compiles at install), so
    # measure with it: this environment may have PYTHONDONTWRITEBYTECODE set.
    compileall.compile_dir(str(ROOT / "agent"), quiet=1)
    compileall.compile_dir(str(ROOT / "collectors"), quiet=1)
    compileall.compile_dir(str(ROOT / "evidence"), quiet=1)
    base = ["agent.cli", "--config", args.config, "collect", "--json"]
    from collectors import REGISTRY

    full = series(base, args.runs)
    lines = [
        f"Command: `.venv/bin/python -m bench.collect_footprint --runs {args.runs} --write` "
        f"as {'root' if os.geteuid() == 0 else 'an unprivileged user'}, shipped `config/agent.yaml` "
        f"(no backup repositories configured), {time.strftime('%Y-%m-%d')}.",
        f"Machine: {describe()}.",
        "",
        "Median (worst) of the runs; each run is a new process, interpreter start-up included.",
        "",
        "| run | wall ms | CPU ms (user+sys) | peak RSS MB |",
        "|---|---|---|---|",
        row("full `collect`", full),
    ]
    lines += [row(f"`--only {name}`", series([*base, "--only", name], args.runs)) for name in REGISTRY]
    lines.append(row("`python -c pass` (interpreter alone)", series(["-"], args.runs)))
    med_full = {k: statistics.median(getattr(r, k) for r in full) for k in GOALS}
    verdicts = []
    for k, goal in GOALS.items():
        verdict = "met" if med_full[k] <= goal else "MISSED"
        verdicts.append(f"{k.replace('_', ' ')}: {med_full[k]:.3g} vs goal {goal:g} → {verdict}")
    lines += ["", "Full collect against the goals (median): " + "; ".join(verdicts) + "."]
    text = "\n".join(lines)
    print(text)
    if args.write:
        replace_section(ROOT / "docs" / "benchmarks.md", "collect-footprint", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
