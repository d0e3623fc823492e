"""Checking an export against the centre's database.

The export is rebuilt from its own scope and compared field by field (a changed status, observed
value, hostname or hash is named by its path), every cited report is compared with its ledger
row, and each node's chain is verified from its retention checkpoint.  A report or head the
ledger no longer has is a NOTE only when retention can have deleted it: under a checkpoint
retention made (central/retention/checkpoint_origin.py), received no later than the checkpoint's entry.
Offline checking, from the export alone, is :mod:`central.export.offline`.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from sqlalchemy import Connection, select

from central.clock import utcnow
from central.config import Retention
from central.db.schema import agents
from central.export import settled
from central.export.build import build, control_summary
from central.export.compare import Problem, diff
from central.export.model import FORMAT, ExportError, Request, iso, parse_time
from central.export.offline import Offline, offline
from central.ingest.ledger import GENESIS, verify_chain
from central.ingest.ledger_check import ledger_entries
from central.retention.checkpoint_origin import Judged, judge
from central.retention.sweep import checkpoints

__all__ = ["Offline", "Problem", "against_store", "control_summary", "diff", "load", "offline"]

_CHECKED_APART = ("ledger", "ledger_at_start", "reports")
_IGNORED = ("generated_at", "centre")


def load(path: Path) -> Dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ExportError(f"{path}: cannot read: {err.strerror or err}") from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ExportError(f"{path}: not a JSON export (only the JSON format can be verified): {err}") from err
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else None
        raise ExportError(f"{path}: format {found!r} is not {FORMAT!r}")
    return data


def _ledger(where: str, exported: Any, actual: Any, judged: Optional[Judged]) -> Iterator[Problem]:
    length = exported.get("length")
    if not actual.get("pruned") or exported.get("pruned") or judged is None:
        yield from diff(exported, actual, where)
    elif judged.problem is not None:
        yield Problem(where, f"its head was deleted under a checkpoint retention did not make ({judged.problem})")
    elif length == judged.mark.chain_index:
        if judged.mark.entry_hash != exported.get("head"):
            yield Problem(where, f"head {exported.get('head')} is not the ledger's {judged.mark.entry_hash}")
    elif isinstance(length, int) and length < judged.mark.chain_index:
        yield Problem(where, "entries of that time were deleted by retention since; not checkable here", note=True)
    else:
        yield from diff(exported, actual, where)


def _received(report: Dict[str, Any]) -> Optional[datetime]:
    try:
        return parse_time(str(report.get("received_at")), "received_at")
    except ExportError:
        return None


def _reports(where: str, exported: List[Any], actual: List[Any], judged: Optional[Judged]) -> Iterator[Problem]:
    theirs = {r["report_id"]: r for r in actual}
    mine = {r.get("report_id"): r for r in exported if isinstance(r, dict)}
    for report_id, report in mine.items():
        here = f"{where}[{report_id}]"
        db = theirs.get(report_id)
        if db is not None and (db["in_ledger"] or not report.get("in_ledger")):
            yield from diff(report, db, here)
        elif report.get("in_ledger") and judged is not None and judged.covers(report.get("chain_index")):
            why = judged.deletion(report["chain_index"], _received(report), report.get("entry_hash"))
            if why is None:
                yield Problem(here, "deleted by retention since the export; not checkable here", note=True)
            else:
                yield Problem(here, why)
        elif db is None:
            yield Problem(here, "in the export but not cited in the database")
        else:
            yield Problem(here, "not in the ledger")
    for report_id in theirs.keys() - mine.keys():
        yield Problem(f"{where}[{report_id}]", "cited by the database but missing from the export")


def _chain(conn: Connection, agent_id: str, judged: Optional[Judged]) -> Iterator[Problem]:
    node = conn.execute(
        select(agents.c.public_key, agents.c.ledger_length, agents.c.ledger_head).where(agents.c.id == agent_id)
    ).one()
    if judged is not None and judged.problem is not None:
        yield Problem(f"ledger {agent_id}", f"checkpoint {judged.problem}")
    start = (judged.mark.chain_index, judged.mark.entry_hash) if judged is not None else (0, GENESIS)
    entries = ledger_entries(conn, agent_id)
    for b in verify_chain(agent_id, node.public_key, entries, node.ledger_length, node.ledger_head, *start):
        where = f"ledger {agent_id}" + (f" entry {b.chain_index}" if b.chain_index is not None else "")
        yield Problem(where, b.problem)


def against_store(
    conn: Connection, export: Dict[str, Any], retention: Optional[Retention] = None, now: Optional[datetime] = None
) -> List[Problem]:
    """Every difference between the export and the database, and every break in the cited chains.

    ``retention``: the settings in force (for checkpoints whose retention round the audit trail
    no longer holds).  Refused (:class:`ExportError`) while the centre has not judged every report
    received by the export's end: the database cannot say yet what was true then.
    """
    req = Request.from_scope(export.get("scope"))
    waiting = settled.pending(conn, req.tenant)
    if waiting.holds_back(req.end):
        raise ExportError(
            f"cannot verify yet: {waiting.why()}, by the export's end {iso(req.end)}; "
            "verify again once it has judged them (evaluation_backlog in /healthz)"
        )
    actual = build(conn, req)
    problems = list(diff(export, actual, "export", (*_IGNORED, "nodes")))
    mine = {str(n.get("id")): n for n in export.get("nodes", []) if isinstance(n, dict)}
    theirs = {n["id"]: n for n in actual["nodes"]}
    marks = judge(conn, checkpoints(conn, list(theirs)), retention or Retention(), now or utcnow())
    for agent_id in theirs.keys() - mine.keys():
        problems.append(
            Problem(f"nodes[{agent_id}]", f"node {theirs[agent_id]['hostname']!r} of this scope is missing")
        )
    for agent_id, node in mine.items():
        where = f"nodes[{agent_id}]"
        if agent_id not in theirs:
            problems.append(Problem(where, "no such node in this scope in the database"))
            continue
        db = theirs[agent_id]
        judged = marks.get(agent_id)
        problems += diff(node, db, where, _CHECKED_APART)
        for key in ("ledger", "ledger_at_start"):
            if key in db:
                problems += _ledger(f"{where}.{key}", node.get(key) or {}, db[key], judged)
        problems += _reports(f"{where}.reports", node.get("reports") or [], db["reports"], judged)
        problems += _chain(conn, agent_id, judged)
    return problems
