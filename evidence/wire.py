"""The messages an agent sends to the centre, and their strict parsing.

A **report** carries one collection round (a list of evidence records); a
**heartbeat** says the agent is alive and how it is doing.  Each is serialised
once to canonical JSON bytes, signed as those bytes, and stored by the centre as
those bytes, so an auditor can check the signature on exactly what was received.
See docs/protocol.md.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, List, Mapping, Optional, Tuple

from evidence.model import Evidence, parse_utc, utc_iso

PROTOCOL_VERSION = 1
_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
MAX_DEPTH = 64
"""Arrays and objects inside one another, at most, in any message: an evidence record's ``observed``
a few levels down is well under it, and anything deeper could not be served back (orjson stops at
255 levels, Python's json at about 1,000 with a RecursionError)."""


class WireError(ValueError):
    """A message is malformed; the text names the field."""


def canonical(data: Mapping[str, Any]) -> bytes:
    """The one byte form of a message: sorted keys, no spaces, UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class Privacy:
    """What the agent does with personal data before it leaves the node (M13), carried in every
    report and heartbeat.  Older agents send none; older centres ignore it (unknown keys)."""

    pseudonymise: bool
    key_id: Optional[str] = None
    """The first 12 hex digits of the SHA-256 of the pseudonym key: nodes with the same id share
    the key (the same person has the same pseudonym on them); the key itself never leaves."""

    def to_dict(self) -> Dict[str, Any]:
        return {"pseudonymise": self.pseudonymise, "key_id": self.key_id}


@dataclass(frozen=True)
class Report:
    agent_id: str
    report_id: str
    seq: int
    collected_at: datetime
    agent_version: str
    evidence: Tuple[Evidence, ...]
    privacy: Optional[Privacy] = None

    def to_dict(self) -> Dict[str, Any]:
        out = {
            "type": "report",
            "v": PROTOCOL_VERSION,
            "agent_id": self.agent_id,
            "report_id": self.report_id,
            "seq": self.seq,
            "collected_at": utc_iso(self.collected_at),
            "agent_version": self.agent_version,
            "evidence": [e.to_dict() for e in self.evidence],
        }
        if self.privacy is not None:
            out["privacy"] = self.privacy.to_dict()
        return out


@dataclass(frozen=True)
class Heartbeat:
    agent_id: str
    seq: int
    sent_at: datetime
    spool_depth: int
    last_errors: Tuple[str, ...] = ()
    privacy: Optional[Privacy] = None

    def to_dict(self) -> Dict[str, Any]:
        health: Dict[str, Any] = {"spool_depth": self.spool_depth, "last_errors": list(self.last_errors)}
        if self.privacy is not None:
            health["privacy"] = self.privacy.to_dict()
        return {
            "type": "heartbeat",
            "v": PROTOCOL_VERSION,
            "agent_id": self.agent_id,
            "seq": self.seq,
            "sent_at": utc_iso(self.sent_at),
            "health": health,
        }


def _field(data: Mapping[str, Any], name: str, kind: type, where: str) -> Any:
    if name not in data:
        raise WireError(f"{where}: missing field {name!r}")
    value = data[name]
    if isinstance(value, bool) and kind is not bool:
        raise WireError(f"{where}.{name}: expected {kind.__name__}, got bool")
    if not isinstance(value, kind):
        raise WireError(f"{where}.{name}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def _ident(data: Mapping[str, Any], name: str, where: str) -> str:
    value: str = _field(data, name, str, where)
    if not _ID.fullmatch(value):
        raise WireError(f"{where}.{name}: must be 8-64 characters of A-Z a-z 0-9 _ -")
    return value


def _time(data: Mapping[str, Any], name: str, where: str) -> datetime:
    try:
        return parse_utc(_field(data, name, str, where))
    except ValueError as err:
        raise WireError(f"{where}.{name}: not an RFC 3339 time with zone") from err


def _seq(data: Mapping[str, Any], where: str) -> int:
    seq: int = _field(data, "seq", int, where)
    if seq < 1 or seq > 2**62:
        raise WireError(f"{where}.seq: must be a positive integer")
    return seq


def _envelope(data: Any, kind: str, where: str) -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise WireError(f"{where}: expected a JSON object")
    if data.get("type") != kind:
        raise WireError(f"{where}.type: expected {kind!r}")
    if data.get("v") != PROTOCOL_VERSION:
        raise WireError(f"{where}.v: unsupported protocol version {data.get('v')!r}")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def nested_too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether parsed JSON holds arrays and objects more than ``limit`` deep (walked without recursion)."""
    stack: List[Tuple[Any, int]] = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


_KEY_ID = re.compile(r"[0-9a-f]{12}")


def _privacy(data: Mapping[str, Any], where: str) -> Optional[Privacy]:
    """The optional ``privacy`` object (absent from older agents' messages: None)."""
    if "privacy" not in data:
        return None
    value = _field(data, "privacy", dict, where)
    on: bool = _field(value, "pseudonymise", bool, f"{where}.privacy")
    key_id = value.get("key_id")
    if key_id is not None and (not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id)):
        raise WireError(f"{where}.privacy.key_id: must be 12 lower-case hex digits or null")
    return Privacy(on, key_id)


def loads(body: bytes, where: str) -> Any:
    """Strict JSON: no NaN or Infinity (Python's json accepts them), no numbers that overflow, and
    at most :data:`MAX_DEPTH` levels of arrays and objects."""
    try:
        data = json.loads(body, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError as err:  # the C decoder recurses once per level, up to the interpreter's limit
        raise WireError(f"{where}: arrays and objects nested more than {MAX_DEPTH} levels deep") from err
    except (UnicodeDecodeError, ValueError) as err:
        raise WireError(f"{where}: not valid JSON: {err}") from err
    if nested_too_deep(data):
        raise WireError(f"{where}: arrays and objects nested more than {MAX_DEPTH} levels deep")
    return data


def parse_report(body: bytes, where: str = "report") -> Report:
    data = _envelope(loads(body, where), "report", where)
    records: List[Any] = _field(data, "evidence", list, where)
    evidence = []
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise WireError(f"{where}.evidence[{i}]: expected an object")
        try:
            evidence.append(Evidence.from_dict(record))
        except ValueError as err:
            raise WireError(f"{where}.evidence[{i}]: {err}") from err
    return Report(
        agent_id=_ident(data, "agent_id", where),
        report_id=_ident(data, "report_id", where),
        seq=_seq(data, where),
        collected_at=_time(data, "collected_at", where),
        agent_version=_field(data, "agent_version", str, where)[:64],
        evidence=tuple(evidence),
        privacy=_privacy(data, where),
    )


def parse_heartbeat(body: bytes, where: str = "heartbeat") -> Heartbeat:
    data = _envelope(loads(body, where), "heartbeat", where)
    health = _field(data, "health", dict, where)
    depth: int = _field(health, "spool_depth", int, f"{where}.health")
    errors: List[Any] = _field(health, "last_errors", list, f"{where}.health")
    if depth < 0:
        raise WireError(f"{where}.health.spool_depth: must not be negative")
    return Heartbeat(
        agent_id=_ident(data, "agent_id", where),
        seq=_seq(data, where),
        sent_at=_time(data, "sent_at", where),
        spool_depth=depth,
        last_errors=tuple(str(e)[:500] for e in errors[:20]),
        privacy=_privacy(health, f"{where}.health"),
    )
