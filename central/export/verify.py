"""Checking an export: against the centre's database, or offline from the export alone.

Against the database, the export is rebuilt from its own scope and compared field by field
(a changed status, observed value, hostname or hash is named by its path), every cited
report is compared with its ledger row, and each node's chain is verified from its
retention checkpoint.  Offline (an export made ``--with-evidence``), each cited report's
body is checked against its hash and the node's signature, each entry hash is recomputed,
links between neighbouring entries and the head are checked, and the control summary is
recomputed from the node sections.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from sqlalchemy import Connection, select

from central.db.schema import agents
from central.export.build import build, control_summary
from central.export.chain import check_entries
from central.export.model import FORMAT, ExportError, Request
from central.ledger import GENESIS, Entry, verify_chain
from central.retention import Checkpoint, checkpoints
from central.verify import ledger_entries
from evidence.policy import Policy
from evidence.signing import SignatureError, fingerprint

_CHECKED_APART = ("ledger", "ledger_at_start", "reports")
_IGNORED = ("generated_at", "centre")
_KEYS = ("id", "rule_id", "report_id")


@dataclass(frozen=True)
class Problem:
    where: str
    message: str
    note: bool = False
    """A note is something that cannot be checked (deleted by retention), not a discrepancy."""

    def __str__(self) -> str:
        return f"{'NOTE' if self.note else 'MISMATCH'} {self.where}: {self.message}"


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


def _label(item: Any, index: int) -> str:
    if isinstance(item, dict):
        for key in _KEYS:
            if isinstance(item.get(key), (str, int)):
                return str(item[key])
    return str(index)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def _labelled(items: List[Any]) -> Dict[str, Any]:
    """A list keyed by its items' ids where they are unique, else by position."""
    labels = [_label(x, i) for i, x in enumerate(items)]
    if len(set(labels)) != len(labels):
        labels = [str(i) for i in range(len(items))]
    return dict(zip(labels, items))


def diff(
    exported: Any, actual: Any, where: str, skip: tuple[str, ...] = (), other: str = "database"
) -> Iterator[Problem]:
    """Every place where the export differs from what ``other`` (the database, a recomputation) gives."""
    if isinstance(exported, dict) and isinstance(actual, dict):
        for key in sorted(set(exported) | set(actual)):
            if key in skip:
                continue
            if key not in actual:
                yield Problem(f"{where}.{key}", f"in the export but not in the {other}")
            elif key not in exported:
                yield Problem(f"{where}.{key}", f"missing from the export ({other}: {_short(actual[key])})")
            else:
                yield from diff(exported[key], actual[key], f"{where}.{key}", other=other)
    elif isinstance(exported, list) and isinstance(actual, list):
        mine, theirs = _labelled(exported), _labelled(actual)
        for label in list(dict.fromkeys([*theirs, *mine])):
            if label not in mine:
                yield Problem(f"{where}[{label}]", "missing from the export")
            elif label not in theirs:
                yield Problem(f"{where}[{label}]", f"in the export but not in the {other}")
            else:
                yield from diff(mine[label], theirs[label], f"{where}[{label}]", other=other)
    elif exported != actual or type(exported) is not type(actual):
        yield Problem(where, f"export says {_short(exported)}, {other} says {_short(actual)}")


def _ledger(where: str, exported: Any, actual: Any, mark: Optional[Checkpoint]) -> Iterator[Problem]:
    if actual.get("pruned") and not exported.get("pruned"):
        if mark is not None and mark.chain_index == exported.get("length"):
            if mark.entry_hash != exported.get("head"):
                yield Problem(where, f"head {exported.get('head')} is not the ledger's {mark.entry_hash}")
            return
        yield Problem(where, "entries of that time were deleted by retention since; not checkable here", note=True)
        return
    yield from diff(exported, actual, where)


def _reports(where: str, exported: List[Any], actual: List[Any], mark: Optional[Checkpoint]) -> Iterator[Problem]:
    theirs = {r["report_id"]: r for r in actual}
    mine = {r.get("report_id"): r for r in exported if isinstance(r, dict)}
    for report_id, report in mine.items():
        here = f"{where}[{report_id}]"
        db = theirs.get(report_id)
        index = report.get("chain_index")
        pruned = mark is not None and isinstance(index, int) and index <= mark.chain_index
        if db is not None and (db["in_ledger"] or not report.get("in_ledger")):
            yield from diff(report, db, here)
        elif report.get("in_ledger") and pruned:
            yield Problem(here, "deleted by retention since the export; not checkable here", note=True)
        elif db is None:
            yield Problem(here, "in the export but not cited in the database")
        else:
            yield Problem(here, "not in the ledger")
    for report_id in theirs.keys() - mine.keys():
        yield Problem(f"{where}[{report_id}]", "cited by the database but missing from the export")


def _chain(conn: Connection, agent_id: str, mark: Optional[Checkpoint]) -> Iterator[Problem]:
    node = conn.execute(
        select(agents.c.public_key, agents.c.ledger_length, agents.c.ledger_head).where(agents.c.id == agent_id)
    ).one()
    start = (mark.chain_index, mark.entry_hash) if mark is not None else (0, GENESIS)
    entries = ledger_entries(conn, agent_id)
    for b in verify_chain(agent_id, node.public_key, entries, node.ledger_length, node.ledger_head, *start):
        where = f"ledger {agent_id}" + (f" entry {b.chain_index}" if b.chain_index is not None else "")
        yield Problem(where, b.problem)


def against_store(conn: Connection, export: Dict[str, Any], policy: Optional[Policy] = None) -> List[Problem]:
    """Every difference between the export and the database, and every break in the cited chains."""
    req = Request.from_scope(export.get("scope"))
    actual = build(conn, req, policy)
    problems = list(diff(export, actual, "export", (*_IGNORED, "nodes")))
    mine = {str(n.get("id")): n for n in export.get("nodes", []) if isinstance(n, dict)}
    theirs = {n["id"]: n for n in actual["nodes"]}
    marks = checkpoints(conn, list(theirs))
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
        mark = marks.get(agent_id)
        problems += diff(node, db, where, _CHECKED_APART)
        for key in ("ledger", "ledger_at_start"):
            if key in db:
                problems += _ledger(f"{where}.{key}", node.get(key) or {}, db[key], mark)
        problems += _reports(f"{where}.reports", node.get("reports") or [], db["reports"], mark)
        problems += _chain(conn, agent_id, mark)
    return problems


def _entry(agent_id: str, report: Dict[str, Any], where: str) -> Entry:
    try:
        body = base64.b64decode(str(report["body"]), validate=True)
        return Entry(
            agent_id,
            int(report["chain_index"]),
            str(report["prev_hash"]),
            str(report["entry_hash"]),
            body,
            str(report["body_sha256"]),
            str(report["signature"]),
            str(report["report_id"]),
        )
    except (KeyError, TypeError, ValueError, binascii.Error) as err:
        raise ExportError(f"{where}: incomplete report ({err}); was the export made --with-evidence?") from err


def _body_matches(agent_id: str, report: Dict[str, Any], entry: Entry, where: str) -> Iterator[Problem]:
    try:
        body = json.loads(entry.body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        yield Problem(where, "body is not a report")
        return
    if not isinstance(body, dict):
        yield Problem(where, "body is not a report")
        return
    for key, value in (("agent_id", agent_id), ("report_id", report["report_id"]), ("seq", report.get("seq"))):
        if body.get(key) != value:
            says = f"export says {_short(value)}, the signed body says {_short(body.get(key))}"
            yield Problem(f"{where}.{key}", says)


def offline(export: Dict[str, Any]) -> List[Problem]:
    """What can be proven from the export alone (it must carry evidence)."""
    if not (export.get("scope") or {}).get("with_evidence"):
        raise ExportError(
            "this export carries no report bodies: make it with --with-evidence, or verify it against the database"
        )
    problems: List[Problem] = []
    nodes = [n for n in export.get("nodes", []) if isinstance(n, dict)]
    for node in nodes:
        agent_id, where = str(node.get("id")), f"nodes[{node.get('id')}]"
        key = node.get("public_key")
        try:
            if fingerprint(str(key)) != node.get("key_fingerprint"):
                problems.append(Problem(f"{where}.public_key", "does not match the key fingerprint"))
        except SignatureError as err:
            problems.append(Problem(f"{where}.public_key", str(err)))
            key = None
        cited = sorted((r for r in node.get("reports", []) if r.get("in_ledger")), key=lambda r: int(r["chain_index"]))
        entries = []
        for report in cited:
            here = f"{where}.reports[{report.get('report_id')}]"
            entry = _entry(agent_id, report, here)
            entries.append(entry)
            problems += _body_matches(agent_id, report, entry, here)
        for b in check_entries(agent_id, None if key is None else str(key), entries):
            problems.append(Problem(f"{where}.reports[{b.report_id}]", b.problem))
        by_index = {e.chain_index: e for e in entries}
        for name in ("ledger", "ledger_at_start"):
            ledger = node.get(name)
            if not ledger or ledger.get("pruned") or not ledger.get("length"):
                continue
            head = by_index.get(ledger["length"])
            if head is None:
                problems.append(Problem(f"{where}.{name}", f"entry {ledger['length']} (the head) is not included"))
            elif head.entry_hash != ledger.get("head"):
                problems.append(
                    Problem(f"{where}.{name}.head", f"is not entry {ledger['length']}'s hash {head.entry_hash}")
                )
        listed = {r.get("report_id") for r in node.get("reports", [])}
        for rule in node.get("rules", []):
            if rule.get("report_id") and rule["report_id"] not in listed:
                problems.append(
                    Problem(f"{where}.rules[{rule.get('rule_id')}]", "cites a report the export does not list")
                )
    try:
        summary = control_summary(nodes)
    except (KeyError, TypeError, ValueError) as err:
        problems.append(Problem("export.nodes", f"malformed: {err}"))
    else:
        problems += diff(export.get("controls"), summary, "export.controls", other="recomputed summary")
    return problems
