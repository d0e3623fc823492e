"""Footprint of the running daemon (``tillsyn-agent run``): RSS over many cycles and CPU per event.

Starts a real centre on 127.0.0.1, enrols a real agent against it, and runs the
daemon as systemd would (``NOTIFY_SOCKET``, ``WATCHDOG_USEC``) twice:

1. heartbeats only (every collector disabled), heartbeat every 5 s: CPU per heartbeat;
2. every collector every 10 s and heartbeats every 5 s for many cycles: RSS each
   cycle (VmRSS, VmHWM from /proc/<pid>/status), CPU per collection cycle (utime +
   stime from /proc/<pid>/stat, less the heartbeats in the window), RSS growth from
   the early to the late cycles (a leak check).

The average CPU at the *default* intervals is then computed from those measured
per-event costs, charging every collector run a whole measured round (an upper bound).

    .venv/bin/python -m bench.daemon_footprint --write          # ~4 minutes
    .venv/bin/python -m bench.daemon_footprint --quick          # ~1 minute, a smoke run
    .venv/bin/python -m bench.daemon_footprint --agent-python /usr/bin/python3 --write

``--agent-python`` runs the daemon (only; the centre stays on this interpreter) on another
interpreter with its own libraries: on Debian 12, ``/usr/bin/python3`` with the python3-*
packages is what a node installed from the .deb runs. A virtual environment's wheels differ
(cryptography's wheel carries its own copy of OpenSSL, ~7 MB of RSS more). That interpreter runs a
copy of the agent's modules laid out as the packages install them (``agent``, ``collectors``,
``evidence`` with ``config/`` as ``evidence.defaults``), byte-compiled by it: the source tree has
no ``evidence.defaults`` outside the development venv's editable install.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml

from bench.docs import replace_section
from bench.load_server import Centre
from bench.machine import describe

ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")
GOALS = {"steady_rss_mb": 45.0, "growth_mb": 1.0, "cpu_percent": 0.1}
WATCHDOG_USEC = 120_000_000  # as WatchdogSec=120s in packaging/systemd/tillsyn-agent.service


@dataclass
class Sample:
    t: float
    rss_kib: int
    hwm_kib: int
    cpu_s: float
    cycles: int
    heartbeats: int


@dataclass
class Phase:
    samples: List[Sample]
    ready_s: Optional[float]
    ready_cpu_s: Optional[float]
    notify: List[str]
    exec_s: Optional[float] = None


def proc_status(pid: int) -> Dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def agent_config(base: Path, collectors_every: Optional[int], heartbeat_every: int) -> Dict[str, Any]:
    """The shipped agent.yaml with short intervals (or every collector off) and no jitter."""
    data: Dict[str, Any] = yaml.safe_load(base.read_text())
    for section in data["collectors"].values():
        if collectors_every is None:
            section["enabled"] = False
        else:
            section["interval"] = collectors_every
    data["heartbeat_interval"] = heartbeat_every
    data["jitter"] = 0
    return data


AGENT_PYTHON = [sys.executable]  # the daemon's interpreter: --agent-python
AGENT_TREE = [ROOT]  # where it runs from: the source tree, or the installed layout for --agent-python


def installed_tree(dest: Path, python: str) -> Path:
    """The agent's modules as the .deb and .rpm install them (/usr/share/tillsyn), byte-compiled
    by ``python`` as dh_python3 does at install."""
    for package in ("agent", "collectors", "evidence"):
        shutil.copytree(ROOT / package, dest / package, ignore=shutil.ignore_patterns("__pycache__"))
    defaults = dest / "evidence" / "defaults"
    defaults.mkdir()
    for source in (ROOT / "config").glob("*"):
        if source.suffix in (".py", ".yaml"):
            shutil.copy2(source, defaults / source.name)
    subprocess.run([python, "-m", "compileall", "-q", str(dest)], check=True, timeout=300)
    return dest


def agent_cmd(config: Path, state: Path, *args: str) -> List[str]:
    return [AGENT_PYTHON[0], "-m", "agent.cli", "--config", str(config), "--state-dir", str(state), *args]


def exec_cost(pid: int, count: int) -> float:
    """The daemon's CPU seconds per program started elsewhere on the host (``/bin/true``)."""
    time.sleep(0.5)
    before = proc_cpu_s(pid)
    for _ in range(count):
        subprocess.run(["/bin/true"], check=True)
    time.sleep(0.5)
    return (proc_cpu_s(pid) - before) / count


def run_daemon(config: Path, state: Path, duration_s: float, work: Path, expect_ready: bool, execs: int = 0) -> Phase:
    """Run the daemon for ``duration_s`` after READY (or after start when nothing is collected)."""
    notify_path = work / "notify.sock"
    notify_path.unlink(missing_ok=True)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.setblocking(False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TILLSYN_", "JOURNAL_STREAM"))}
    env.update(NOTIFY_SOCKET=str(notify_path), WATCHDOG_USEC=str(WATCHDOG_USEC))
    log_path = work / f"daemon-{int(time.time() * 1000)}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(agent_cmd(config, state, "run"), cwd=AGENT_TREE[0], env=env, stdout=log, stderr=log)
    started = time.monotonic()
    messages: List[str] = []
    samples: List[Sample] = []
    ready_s: Optional[float] = None
    ready_cpu: Optional[float] = None
    seen_heartbeats: set[str] = set()
    exec_s: Optional[float] = None
    try:
        end = started + duration_s + (60 if expect_ready else 0)
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise SystemExit(f"the daemon exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            while True:
                try:
                    messages.append(notify.recv(4096).decode())
                except BlockingIOError:
                    break
            if ready_s is None and any("READY=1" in m for m in messages):
                ready_s = time.monotonic() - started
                ready_cpu = proc_cpu_s(proc.pid)
                if execs:  # between the first and second cycle, outside the measured window
                    exec_s = exec_cost(proc.pid, execs)
                end = time.monotonic() + duration_s
            status = proc_status(proc.pid)
            try:
                info = json.loads((state / "status.json").read_text())
            except (OSError, ValueError):
                info = {}
            if info.get("last_heartbeat_at"):
                seen_heartbeats.add(info["last_heartbeat_at"])
            cycles = log_path.read_text().count(" spooled (")
            samples.append(
                Sample(
                    time.monotonic() - started,
                    status["VmRSS"],
                    status["VmHWM"],
                    proc_cpu_s(proc.pid),
                    cycles,
                    len(seen_heartbeats),
                )
            )
            time.sleep(0.25)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        notify.close()
    if expect_ready and ready_s is None:
        raise SystemExit(f"no READY=1 from the daemon:\n{log_path.read_text()[-3000:]}")
    if proc.returncode != 0:
        raise SystemExit(f"the daemon stopped with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
    return Phase(samples, ready_s, ready_cpu, messages, exec_s)


def first_at(samples: List[Sample], cycles: int) -> Sample:
    return next(s for s in samples if s.cycles >= cycles)


def per_heartbeat_cpu(phase: Phase) -> float:
    """CPU per heartbeat from the second heartbeat on (the first one opens the connection)."""
    start = next(s for s in phase.samples if s.heartbeats >= 2)
    end = phase.samples[-1]
    beats = end.heartbeats - start.heartbeats
    if beats < 2:
        raise SystemExit("too few heartbeats in the heartbeat phase; run longer")
    return (end.cpu_s - start.cpu_s) / beats


def default_runs_per_hour() -> Dict[str, float]:
    """Collector runs and heartbeats per hour at the built-in default intervals (with mean jitter)."""
    from agent.config import from_mapping

    config = from_mapping({}, None)
    stretch = 1 + config.jitter / 2
    runs = {n: 3600 / (c.interval * stretch) for n, c in config.collectors.items() if c.enabled}
    runs["heartbeat"] = 3600 / config.heartbeat_interval
    return runs


def analyse(main: Phase, beat_phase: Phase) -> Dict[str, Any]:
    beat_cpu = per_heartbeat_cpu(beat_phase)
    samples = main.samples
    cycles = samples[-1].cycles
    if cycles < 4:
        raise SystemExit(f"only {cycles} collection cycles; run longer")
    # Whole cycles from the end of cycle 2 (warm) to the end of the last one.
    start, end = first_at(samples, 2), first_at(samples, cycles)
    beats = end.heartbeats - start.heartbeats
    cycle_cpu = (end.cpu_s - start.cpu_s - beats * beat_cpu) / (end.cycles - start.cycles)
    at_cycle = [first_at(samples, k).rss_kib / 1024 for k in range(2, cycles + 1)]
    quarter = max(2, len(at_cycle) // 4)
    early, late = statistics.median(at_cycle[:quarter]), statistics.median(at_cycle[-quarter:])
    runs = default_runs_per_hour()
    heartbeats = runs.pop("heartbeat")
    cpu_per_hour = sum(runs.values()) * cycle_cpu + heartbeats * beat_cpu
    return {
        "cycles": cycles,
        "duration_s": samples[-1].t - (main.ready_s or 0),
        "peak_mb": max(s.hwm_kib for s in samples) / 1024,
        "steady_mb": statistics.median(at_cycle[len(at_cycle) // 2 :]),
        "early_mb": early,
        "late_mb": late,
        "growth_mb": late - early,
        "quarter": quarter,
        "cycle_ms": cycle_cpu * 1000,
        "beat_ms": beat_cpu * 1000,
        "ready_s": main.ready_s,
        "ready_cpu_ms": (main.ready_cpu_s or 0) * 1000,
        "runs_per_hour": sum(runs.values()),
        "beats_per_hour": heartbeats,
        "cpu_s_per_hour": cpu_per_hour,
        "cpu_percent": cpu_per_hour / 3600 * 100,
        "watchdog_pings": sum("WATCHDOG=1" in m for m in main.notify),
        "exec_ms": (main.exec_s or 0) * 1000,
    }


def agent_libraries() -> str:
    """The daemon's interpreter and the versions of the libraries it loads."""
    probe = (
        "import sys, cryptography, psutil, requests, urllib3, watchdog.version as w, yaml; "
        "print(f'Python {sys.version.split()[0]}, cryptography {cryptography.__version__}, "
        "psutil {psutil.__version__}, requests {requests.__version__}, urllib3 {urllib3.__version__}, "
        "watchdog {w.VERSION_STRING}, "
        "PyYAML {yaml.__version__} (libyaml: {yaml.__with_libyaml__})')"
    )
    out = subprocess.run([AGENT_PYTHON[0], "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    return out.stdout.strip()


def render(r: Dict[str, Any], args: argparse.Namespace, commit: str) -> str:
    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    command = "--quick" if args.quick else f"--duration {args.duration:g}"
    if args.agent_python:
        command += f" --agent-python {args.agent_python}"
    return "\n".join(
        [
            f"Command: `.venv/bin/python -m bench.daemon_footprint {command} --write` as "
            f"{'root' if os.geteuid() == 0 else 'an unprivileged user'}, shipped `config/agent.yaml` with every "
            f"collector every {args.interval} s, heartbeat every {args.heartbeat} s, no jitter, "
            f"{time.strftime('%Y-%m-%d')}; agent code: commit {commit}.",
            f"Machine: {describe()}.",
            f"The daemon's interpreter: `{AGENT_PYTHON[0] if args.agent_python else '.venv/bin/python'}`, "
            f"{agent_libraries()}.",
            "",
            f"The daemon ran {r['cycles']} collection cycles in {r['duration_s']:.0f} s after READY=1 against a real "
            f"centre on 127.0.0.1 (SQLite), with `NOTIFY_SOCKET` and `WATCHDOG_USEC` as systemd sets them "
            f"({r['watchdog_pings']} watchdog pings); every report was delivered as it was made.",
            "",
            "| measure | value |",
            "|---|---|",
            f"| start to READY=1 (first collection spooled) | {r['ready_s']:.2f} s, {r['ready_cpu_ms']:.0f} ms CPU |",
            f"| peak RSS (VmHWM) | {r['peak_mb']:.1f} MB |",
            f"| steady RSS (median at the end of the later half of the cycles) | {r['steady_mb']:.1f} MB |",
            f"| RSS early → late (median of the first and last {r['quarter']} cycles) | "
            f"{r['early_mb']:.1f} → {r['late_mb']:.1f} MB ({r['growth_mb']:+.2f} MB) |",
            f"| CPU per collection cycle (every enabled collector, spool, sign, deliver) | {r['cycle_ms']:.1f} ms |",
            f"| CPU per heartbeat (heartbeat-only run; idle wake-ups included) | {r['beat_ms']:.1f} ms |",
            f"| CPU per program started anywhere else on the host (`/bin/true` x {args.execs}) "
            f"| {r['exec_ms']:.3f} ms |",
            "",
            f"At the default intervals (`agent.yaml`: power, antivirus and ports every 300 s, backup 900 s, "
            f"disk encryption 3600 s, heartbeat 60 s, jitter 10 %), computed from the measured per-event costs "
            f"above, charging every single collector run a whole cycle of all collectors (an upper bound): "
            f"{r['runs_per_hour']:.1f} runs x {r['cycle_ms']:.1f} ms + {r['beats_per_hour']:.0f} heartbeats x "
            f"{r['beat_ms']:.1f} ms = {r['cpu_s_per_hour']:.2f} s CPU per hour = "
            f"**{r['cpu_percent']:.3f} % of one core**. Not included: the cost per program started elsewhere on "
            f"the host (last row), paid because the daemon watches `/etc` (for `/etc/fstab`, `/etc/crypttab`) and "
            f"its file-watching library reports every open and close there (the dynamic linker opens "
            f"`/etc/ld.so.cache` at every program start); at 10 program starts per second that adds "
            f"{r['exec_ms'] * 10 / 1000 * 100:.2f} % of one core.",
            "",
            f"Against the goals: steady RSS {r['steady_mb']:.1f} MB vs ≤ 45 MB → {verdict(r['steady_mb'] <= 45)}; "
            f"growth {r['growth_mb']:+.2f} MB over {r['cycles']} cycles vs none (≤ 1 MB) → "
            f"{verdict(r['growth_mb'] <= GOALS['growth_mb'])}; average CPU {r['cpu_percent']:.3f} % vs ≤ 0.1 % → "
            f"{verdict(r['cpu_percent'] <= GOALS['cpu_percent'])}.",
        ]
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=180, help="seconds of the collection phase")
    parser.add_argument("--heartbeat-phase", type=float, default=40, help="seconds of the heartbeat-only phase")
    parser.add_argument("--interval", type=int, default=10, help="seconds between collections (minimum 10)")
    parser.add_argument("--heartbeat", type=int, default=5, help="seconds between heartbeats (minimum 5)")
    parser.add_argument("--execs", type=int, default=1000, help="programs started to measure the file-watch cost")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (~1 minute)")
    parser.add_argument("--config", default=str(ROOT / "config" / "agent.yaml"))
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument(
        "--agent-python", help="run the daemon on this interpreter and its libraries (e.g. Debian's /usr/bin/python3)"
    )
    args = parser.parse_args(argv)
    if args.agent_python:
        AGENT_PYTHON[0] = args.agent_python
    if args.quick:
        args.duration, args.heartbeat_phase = 45.0, 25.0
    # Installed packages ship compiled bytecode (dh_python3 byte-compiles at install).
    if not args.agent_python:
        for package in ("agent", "collectors", "evidence"):
            compileall.compile_dir(str(ROOT / package), quiet=1)
    commit = (
        subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
        or "unknown"
    )
    with tempfile.TemporaryDirectory(prefix="tillsyn-daemon-bench-") as tmp:
        work = Path(tmp)
        if args.agent_python:
            AGENT_TREE[0] = installed_tree(work / "tillsyn", args.agent_python)
        (work / "centre").mkdir()
        centre = Centre(work / "centre", None)
        centre.start()
        try:
            state = work / "agent"
            token = centre.cli("token", "create").strip()
            (work / "etc").mkdir()
            config_path = work / "etc" / "agent.yaml"
            enrolled = subprocess.run(
                agent_cmd(
                    Path(args.config), state, "enroll", "--server", f"http://127.0.0.1:{centre.port}", "--token", token
                ),
                cwd=AGENT_TREE[0],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if enrolled.returncode:
                raise SystemExit(f"enrolment failed: {enrolled.stderr}")
            config_path.write_text(yaml.safe_dump(agent_config(Path(args.config), None, args.heartbeat)))
            print(f"heartbeat-only phase, {args.heartbeat_phase:g} s ...", file=sys.stderr)
            beats = run_daemon(config_path, state, args.heartbeat_phase, work, expect_ready=False)
            config_path.write_text(yaml.safe_dump(agent_config(Path(args.config), args.interval, args.heartbeat)))
            print(f"collection phase, {args.duration:g} s ...", file=sys.stderr)
            phase = run_daemon(config_path, state, args.duration, work, expect_ready=True, execs=args.execs)
            depth = json.loads((state / "status.json").read_text()).get("spool_depth")
        finally:
            centre.stop()
    if depth:
        raise SystemExit(f"{depth} report(s) still in the spool at the end: delivery fell behind")
    text = render(analyse(phase, beats), args, commit)
    print(text)
    if args.write:
        replace_section(ROOT / "docs" / "benchmarks.md", "daemon-footprint", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
