"""An export as JSON (complete) or CSV (one row per node and rule, plain columns: ``message`` is
the finding's sentence a person reads, ``observed`` its value as compact JSON for programs)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Dict, List

CSV_COLUMNS = (
    "tenant",
    "agent_id",
    "hostname",
    "rule_id",
    "controls",
    "status",
    "since",
    "message",
    "observed",
    "accepted_by",
    "report_id",
    "chain_index",
    "entry_hash",
    "body_sha256",
)
RANGE_COLUMNS = ("status_at_start", "changes")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def to_json(export: Dict[str, Any]) -> str:
    return json.dumps(export, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def _cell(value: Any) -> str:
    """A plain text cell; text a spreadsheet would run as a formula gets a leading ' (OWASP CSV injection)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def rows(export: Dict[str, Any]) -> List[Dict[str, str]]:
    ranged = export["scope"]["mode"] == "range"
    out = []
    for node in export["nodes"]:
        cited = {r["report_id"]: r for r in node["reports"]}
        for rule in node["rules"]:
            report = cited.get(rule["report_id"] or "", {})
            row = {
                "tenant": node["tenant"],
                "agent_id": node["id"],
                "hostname": node["hostname"],
                "rule_id": rule["rule_id"],
                "controls": " ".join(rule["controls"]),
                "status": rule["status"],
                "since": rule["since"],
                "message": rule["message"],
                "observed": rule["observed"],
                "accepted_by": " ".join(rule["accepted_by"]),
                "report_id": rule["report_id"],
                "chain_index": report.get("chain_index"),
                "entry_hash": report.get("entry_hash"),
                "body_sha256": report.get("body_sha256"),
            }
            if ranged:
                row.update(status_at_start=rule["status_at_start"], changes=len(rule["changes"]))
            out.append({k: _cell(v) for k, v in row.items()})
    return out


def to_csv(export: Dict[str, Any]) -> str:
    columns = CSV_COLUMNS + (RANGE_COLUMNS if export["scope"]["mode"] == "range" else ())
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows(export))
    return buffer.getvalue()
