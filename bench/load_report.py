"""The Markdown section of docs/benchmarks.md for a load run: figures, goals, nodes per centre."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, List, Sequence

from bench.load_floor import Floor
from bench.load_phases import Phase
from bench.machine import describe
from evidence.model import Evidence

if TYPE_CHECKING:
    from bench.ingest_load import DbRun, Settings

GOAL_SHARE, GOAL_P99_MS = 0.5, 50.0
HEARTBEAT_S, REPORT_S = 60.0, 300.0


def _cpu_ms(phase: Phase, key: str) -> float:
    """CPU milliseconds per answered request of ``key`` (the centre, the database, the client)."""
    return phase.cpu.get(key, 0.0) / phase.ok * 1000 if phase.ok else 0.0


def _per_req_ms(phase: Phase, key: str) -> str:
    return f"{_cpu_ms(phase, key):.2f}" if phase.ok else "-"


def _row(label: str, phase: Phase) -> str:
    busy = phase.cpu.get("machine", 0.0) / phase.wall_s / 2 * 100 if phase.wall_s else 0.0
    errors = phase.sent - phase.ok
    return (
        f"| {label} | {phase.rate:,.0f} | {phase.pct(0.5):.1f} | {phase.pct(0.99):.1f} | {phase.ok:,}"
        f"{f' ({errors} failed)' if errors else ''} | {_per_req_ms(phase, 'centre')} "
        f"| {_per_req_ms(phase, 'database')} | {_per_req_ms(phase, 'client')} | {busy:.0f} |"
    )


def _nodes(reports_s: float, heartbeats_s: float) -> float:
    """Nodes whose load (1 heartbeat per 60 s, 1 report per 5 min) keeps the centre fully busy."""
    per_node = (1 / HEARTBEAT_S) / heartbeats_s + (1 / REPORT_S) / reports_s
    return 1 / per_node


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report_size(template: Sequence[Evidence]) -> str:
    raw = json.dumps([e.to_dict() for e in template], sort_keys=True, separators=(",", ":")).encode()
    return f"{len(raw) / 1024:.1f} KB of evidence ({len(base64.b64encode(raw)) / 1024:.1f} KB base64 in the batch)"


def _evaluation(run: DbRun) -> List[str]:
    lines = [
        "Evaluation after ingest (the centre judges what it acknowledged; each report phase is charged for it):",
        "",
        "| report phase | answered | answered/s | unjudged at the phase's end | judged all after s "
        "| end to end reports/s | centre CPU ms/report incl. evaluation | DB CPU ms/report |",
        "|---|---|---|---|---|---|---|---|",
    ]
    labels = {
        "report first": "each node's first report (every verdict changes)",
        "report peak": "closed loop (peak)",
        "report half": "open loop (half)",
    }
    for key, label in labels.items():
        phase, drained = run.phases[key], run.drains[key]
        lines.append(
            f"| {label} | {phase.ok:,} | {phase.rate:,.0f} | {drained.backlog:,} | {drained.wall_s:.1f} "
            f"| {drained.end_to_end(phase):,.0f} | {drained.cpu_ms(phase, 'centre'):.2f} "
            f"| {drained.cpu_ms(phase, 'database'):.2f} |"
        )
    return [*lines, ""]


def _db_section(run: DbRun, floor: Floor) -> List[str]:
    p = run.phases
    # the ceiling is the faster of the two /livez runs: a slow moment of the machine cannot lower it
    livez = max(p["livez"], p["livez after"], key=lambda phase: phase.rate)
    rep, beat = p["report peak"], p["heartbeat peak"]
    rep_half, beat_half = p["report half"], p["heartbeat half"]
    lines = [
        f"**{run.database}**",
        "",
        "| phase | answered/s | p50 ms | p99 ms | answered | centre CPU ms/req | DB CPU ms/req "
        "| client CPU ms/req | machine busy % |",
        "|---|---|---|---|---|---|---|---|---|",
        _row("`GET /livez` closed loop, first", p["livez"]),
        _row("`GET /livez` closed loop, again after the ingest phases", p["livez after"]),
        _row("reports closed loop (peak)", rep),
        _row("heartbeats closed loop (peak)", beat),
        _row(f"reports open loop at {rep_half.sent / rep_half.wall_s:,.0f}/s (half)", rep_half),
        _row(f"heartbeats open loop at {beat_half.sent / beat_half.wall_s:,.0f}/s (half)", beat_half),
        "",
        *_evaluation(run),
    ]
    rep_share, beat_share = rep.rate / livez.rate, beat.rate / livez.rate
    worst_p99 = max(rep_half.pct(0.99), beat_half.pct(0.99))
    sustained = run.drains["report peak"].end_to_end(rep)
    c = run.check
    assert c is not None
    integrity = (
        f"{c.sent:,} reports sent to {c.nodes} nodes' ledgers, {c.acked:,} acknowledged, {c.rows:,} rows stored: "
        f"{c.lost} lost, {c.duplicated} duplicated, {c.unexpected} unexpected, "
        f"{c.unacknowledged_stored} stored without acknowledgement; {run.redelivered} acknowledged reports sent "
        f"again → {run.redelivered - len(run.redelivery_wrong)} acknowledged as duplicates, nothing stored twice; "
        f"`tillsyn-central verify`: {c.verify_output}"
    )
    capacity = _nodes(sustained, beat.rate)
    lines += [
        f"- Reports acknowledged at {rep_share:.0%} of the ceiling ({livez.rate:,.0f}/s, the faster `/livez` run; "
        f"{sustained / livez.rate:.0%} counting until "
        f"every one was judged), heartbeats at {beat_share:.0%} (goal ≥ {GOAL_SHARE:.0%}): "
        f"{_verdict(rep_share >= GOAL_SHARE)} / {_verdict(beat_share >= GOAL_SHARE)}.",
        f"- p99 at half the peak rate (for reports half of {sustained:,.0f}/s, the peak rate at which they were "
        f"judged as well as acknowledged): "
        f"reports {rep_half.pct(0.99):.1f} ms, heartbeats {beat_half.pct(0.99):.1f} ms "
        f"(goal ≤ {GOAL_P99_MS:g} ms): {_verdict(worst_p99 <= GOAL_P99_MS)}.",
        f"- Integrity: {integrity}; {run.refused} requests refused → {_verdict(run.clean)}.",
        f"- Nodes per centre process (1 heartbeat per {HEARTBEAT_S:g} s, 1 report per {REPORT_S / 60:g} min): "
        f"≈ {capacity:,.0f} at saturation (reports counted end to end, until judged), ≈ {capacity / 2:,.0f} "
        "at half load, where the p99 above was measured.",
        _floor_line(floor, livez, rep, run.drains["report peak"].cpu_ms(rep, "centre")),
        "",
    ]
    return lines


def _floor_line(floor: Floor, livez: Phase, rep: Phase, report_ms: float) -> str:
    """Whether the goal is within reach for a report: the checks it needs before it may be stored,
    against the budget half the ceiling leaves, for one centre process and for the whole machine.
    The HTTP work is left out of the least cost (the agents' requests skip FastAPI, which ``/livez``
    goes through), and the machine's budget is taken at the one-process ceiling (more processes
    would raise the ceiling and shrink it), so both comparisons can only favour the goal."""
    http, client_report = _cpu_ms(livez, "centre"), _cpu_ms(rep, "client")
    checks = floor.report_interpreter_ms
    least_machine = floor.report_signatures_ms + checks + client_report
    cores = os.cpu_count() or 1
    machine_budget = cores * 1000 / (livez.rate / 2) if livez.rate else 0.0
    return (
        f"- The least a report costs, against the goal's budget: `/livez` costs the centre {http:.2f} ms of "
        f"interpreter time per request, so at half the ceiling one centre process has {2 * http:.2f} ms per "
        f"report. Reading the batch and parsing and type-checking the report, which must come before it is "
        f"stored, take {checks:.2f} ms of it (the centre's own functions, timed in the client's process); "
        f"the HTTP work, storing, chaining and judging come on top ({report_ms:.2f} ms in all at the peak). "
        f"All {cores} cores at half the ceiling give {machine_budget:.2f} ms of CPU per report; a report "
        f"needs at least {least_machine:.2f} ms of it before any HTTP work, storing or judging: its two "
        f"Ed25519 signatures ({floor.report_signatures_ms:.2f} ms), those checks and the client's "
        f"{client_report:.2f} ms. A heartbeat needs {floor.heartbeat_signature_ms:.2f} ms for its signature "
        f"and {floor.heartbeat_parse_ms:.2f} ms for its parsing."
    )


def code_version() -> str:
    """The commit the centre ran from, and whether central/ or evidence/ had uncommitted changes."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=False
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "central", "evidence"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return "unknown"
    return head.stdout.strip() + (" with uncommitted changes in central/ or evidence/" if dirty.stdout.strip() else "")


def render(
    runs: Sequence[DbRun],
    floor: Floor,
    template: Sequence[Evidence],
    s: Settings,
    command: str,
    load: float,
    elapsed_s: float,
) -> str:
    lines = [
        f"Command: `{command}` as root, {time.strftime('%Y-%m-%d')}; the whole run took {elapsed_s:.0f} s.",
        f"Centre code: commit {code_version()}.",
        f"Machine: {describe()}; load average {load:.2f} when the run started (other work on the machine "
        "shows in the *machine busy* column beside the centre's and the client's own CPU).",
        "",
        f"Setup: {s.nodes} enrolled nodes, each with its own Ed25519 key; one report per batch (an agent's steady "
        f"state), built from this machine's real `tillsyn-agent collect --json`: {report_size(template)}. "
        f"Closed loops on {s.concurrency} kept-alive connections; every timed phase {s.duration_s:g} s; "
        "the centre is one `tillsyn-central serve` process (uvicorn, background duties on). "
        "Latency is measured by the client from the moment a request was due; CPU per request from /proc "
        "(the centre's process, the PostgreSQL backends of its database, this client).",
        "",
    ]
    for run in runs:
        lines += _db_section(run, floor)
    return "\n".join(lines).rstrip() + "\n"
