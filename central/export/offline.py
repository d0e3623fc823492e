"""Checking an export from itself alone (one made ``--with-evidence``): what its signed evidence proves.

Each cited report's body is checked against its hash and the node's signature, each entry hash is
recomputed, links between neighbouring entries and each stated head are checked, and the control
summary is recomputed from the node sections.  What the export cannot prove is said, never passed
over: a cited report retention had deleted before the export was made (``in_ledger``: false) and a
head that had been deleted (``pruned``) are NOTEs, and the tally says how many of each were checked.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List

from central.export.build import control_summary
from central.export.chain import Listed, check_entries
from central.export.compare import Problem, diff, short
from central.export.model import ExportError
from central.ingest.ledger import GENESIS, Entry
from evidence.signing import SignatureError, fingerprint


@dataclass
class Offline:
    problems: List[Problem] = field(default_factory=list)
    reports_checked: int = 0
    reports_cited: int = 0
    heads_checked: int = 0
    heads_stated: int = 0

    @property
    def proves_nothing(self) -> bool:
        """The export states reports or heads and not one of them could be checked."""
        stated = self.reports_cited + self.heads_stated
        return stated > 0 and self.reports_checked + self.heads_checked == 0

    def tally(self) -> str:
        return (
            f"{self.reports_checked} of {self.reports_cited} cited report(s) and {self.heads_checked} of "
            f"{self.heads_stated} ledger head(s) checked (signatures, entry hashes, links)"
        )


def _malformed(where: str, what: str) -> ExportError:
    return ExportError(f"{where}: {what}; the export is malformed")


def _index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _listed(node: Dict[str, Any], key: str, where: str) -> List[Dict[str, Any]]:
    items = node.get(key)
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise _malformed(f"{where}.{key}", "not a list of objects")
    return items


def _reports(node: Dict[str, Any], where: str) -> List[Dict[str, Any]]:
    """The node's report entries, each shaped as the checks below read it."""
    out = _listed(node, "reports", where)
    for i, report in enumerate(out):
        here = f"{where}.reports[{report.get('report_id', i)}]"
        if not isinstance(report.get("report_id"), str):
            raise _malformed(here, "no report_id")
        if not isinstance(report.get("in_ledger"), bool):
            raise _malformed(here, "no in_ledger (true or false)")
        if report["in_ledger"] and not (_index(report.get("chain_index")) and report["chain_index"] > 0):
            raise _malformed(here, "no chain_index (a positive integer)")
    return out


def _entry(agent_id: str, report: Dict[str, Any], where: str) -> Listed:
    try:
        body = base64.b64decode(str(report["body"]), validate=True)
        entry = Entry(
            agent_id,
            int(report["chain_index"]),
            str(report["entry_hash"]),
            body,
            str(report["body_sha256"]),
            str(report["signature"]),
            str(report["report_id"]),
            None if report.get("erased_sha256") is None else str(report["erased_sha256"]),
        )
        prev = report["prev_hash"]  # null: the ledger had no entry before it (central/export/ledger_refs.py)
        return Listed(None if prev is None else str(prev), entry)
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
            says = f"export says {short(value)}, the signed body says {short(body.get(key))}"
            yield Problem(f"{where}.{key}", says)


def _heads(node: Dict[str, Any], where: str, by_index: Dict[int, Entry], done: Offline) -> None:
    for name in ("ledger", "ledger_at_start"):
        if name == "ledger_at_start" and name not in node:
            continue
        ledger, here = node.get(name), f"{where}.{name}"
        if not isinstance(ledger, dict):
            raise _malformed(here, "not an object")
        done.heads_stated += 1
        if ledger.get("pruned") is True:
            message = "its head had been deleted by retention when the export was made (pruned): not checkable"
            done.problems.append(Problem(here, message, note=True))
            continue
        length = ledger.get("length")
        if not isinstance(length, int) or not _index(length):
            raise _malformed(here, "no length (an integer) and not pruned")
        done.heads_checked += 1
        head = by_index.get(length)
        if length and head is None:
            done.problems.append(Problem(here, f"entry {length} (the head) is not included"))
            continue
        expected = head.entry_hash if head is not None else GENESIS  # an empty chain's head is genesis
        if expected != ledger.get("head"):
            done.problems.append(Problem(f"{here}.head", f"is not entry {length}'s hash {expected}"))


def _node(node: Dict[str, Any], done: Offline) -> None:
    agent_id, where = str(node.get("id")), f"nodes[{node.get('id')}]"
    reports = _reports(node, where)
    key = node.get("public_key")
    try:
        if fingerprint(str(key)) != node.get("key_fingerprint"):
            done.problems.append(Problem(f"{where}.public_key", "does not match the key fingerprint"))
    except SignatureError as err:
        done.problems.append(Problem(f"{where}.public_key", str(err)))
        key = None
    entries: List[Listed] = []
    for report in sorted((r for r in reports if r["in_ledger"]), key=lambda r: int(r["chain_index"])):
        here = f"{where}.reports[{report['report_id']}]"
        item = _entry(agent_id, report, here)
        entry = item.entry
        entries.append(item)
        done.problems.extend(_body_matches(agent_id, report, entry, here))
        if entry.erased_sha256 is not None:
            message = (
                "signature not checkable: personal data erased on request (M08); chain link and erased body checked"
            )
            done.problems.append(Problem(here, message, note=True))
    for report in reports:
        if not report["in_ledger"]:
            message = "deleted by retention before the export was made (in_ledger: false): not checkable"
            done.problems.append(Problem(f"{where}.reports[{report['report_id']}]", message, note=True))
    done.reports_cited += len(reports)
    done.reports_checked += len(entries)
    for b in check_entries(agent_id, None if key is None else str(key), entries):
        done.problems.append(Problem(f"{where}.reports[{b.report_id}]", b.problem))
    _heads(node, where, {e.entry.chain_index: e.entry for e in entries}, done)
    listed = {r["report_id"] for r in reports}
    for rule in _listed(node, "rules", where):
        changes = rule.get("changes")
        if not isinstance(changes, list):
            changes = []
        cited = [rule.get("report_id"), *(c.get("report_id") for c in changes if isinstance(c, dict))]
        if any(r and r not in listed for r in cited):
            message = "cites a report the export does not list"
            done.problems.append(Problem(f"{where}.rules[{rule.get('rule_id')}]", message))


def offline(export: Dict[str, Any]) -> Offline:
    """What can be proven from the export alone (it must carry evidence), and how much of it could be."""
    if not (export.get("scope") or {}).get("with_evidence"):
        raise ExportError(
            "this export carries no report bodies: make it with --with-evidence, or verify it against the database"
        )
    done = Offline()
    nodes = export.get("nodes")
    if not isinstance(nodes, list) or not all(isinstance(n, dict) for n in nodes):
        raise _malformed("export.nodes", "not a list of objects")
    for node in nodes:
        _node(node, done)
    try:
        summary = control_summary(nodes)
    except (KeyError, TypeError, ValueError) as err:
        done.problems.append(Problem("export.nodes", f"malformed: {err}"))
    else:
        done.problems += diff(export.get("controls"), summary, "export.controls", other="recomputed summary")
    return done
