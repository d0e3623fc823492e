"""What each operator of a policy test means, three-valued: true, false or unknown (None).

Pure: no I/O, no clock of its own.  A missing or null fact, a fact of the wrong type, a time
without a zone or too far in the future, are unknown, and unknown is never passing.  The
operators are documented in docs/policy.md ("Operators").
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Callable, Dict, Optional

from evidence.model import parse_utc

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"90s"``, ``"15m"``, ``"26h"``, ``"31d"``, ``"2w"``."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 15m, 26h, 31d)")
    return float(match.group(1)) * _UNIT[match.group(2)]


Tri = Optional[bool]

MAX_AHEAD_S = 600.0
"""A time up to 10 minutes ahead of ``now`` is clock skew between node and centre; further ahead,
``max_age`` is unknown: a clock or a writer is wrong, and a date in 2036 says nothing about today."""


def _compare(fn: Callable[[Any, Any], bool], strict_bool: bool = False) -> Callable[[Any, Any, datetime], Tri]:
    """``strict_bool``: a bool is not a number here (Python's ``True == 1``), so mixing them is unknown."""

    def op(actual: Any, expected: Any, _now: datetime) -> Tri:
        if actual is None:
            return None
        if strict_bool and isinstance(actual, bool) != isinstance(expected, bool):
            return None
        try:
            return bool(fn(actual, expected))
        except TypeError:
            return None

    return op


def _incomplete(actual: Any) -> bool:
    """A list with a null member: some members were not seen (e.g. tags of a socket whose owner is unknown)."""
    return isinstance(actual, list) and any(member is None for member in actual)


def _contains(wanted: bool) -> Callable[[Any, Any, datetime], Tri]:
    """``contains`` (``wanted`` True) or ``not_contains``; on an incomplete list only a member seen decides."""
    plain = _compare(lambda a, b: (b in a) is wanted)

    def op(actual: Any, expected: Any, now: datetime) -> Tri:
        if _incomplete(actual):
            return wanted if expected in actual else None
        return plain(actual, expected, now)

    return op


def _moment(actual: Any) -> Optional[datetime]:
    if not isinstance(actual, str):
        return None
    if len(actual) == 10:  # a bare date (YYYY-MM-DD), as some UPSes report their self-test
        actual += "T00:00:00Z"
    try:
        return parse_utc(actual)
    except ValueError:
        return None


def _max_age(actual: Any, expected: Any, now: datetime) -> Tri:
    moment = _moment(actual)
    if moment is None or (moment - now).total_seconds() > MAX_AHEAD_S:
        return None
    return (now - moment).total_seconds() <= parse_duration(expected)


def _matches_regex(actual: Any, expected: Any, _now: datetime) -> Tri:
    if not isinstance(actual, str):
        return None
    return re.search(str(expected), actual, re.IGNORECASE) is not None


def _bool_is(wanted: bool) -> Callable[[Any, Any, datetime], Tri]:
    def op(actual: Any, _expected: Any, _now: datetime) -> Tri:
        return None if not isinstance(actual, bool) else actual is wanted

    return op


OPERATORS: Dict[str, Callable[[Any, Any, datetime], Tri]] = {
    "eq": _compare(lambda a, b: a == b, True),
    "ne": _compare(lambda a, b: a != b, True),
    "lt": _compare(lambda a, b: a < b, True),
    "le": _compare(lambda a, b: a <= b, True),
    "gt": _compare(lambda a, b: a > b, True),
    "ge": _compare(lambda a, b: a >= b, True),
    "in": _compare(lambda a, b: a in b),
    "not_in": _compare(lambda a, b: a not in b),
    "contains": _contains(True),
    "not_contains": _contains(False),
    "is_true": _bool_is(True),
    "is_false": _bool_is(False),
    "not_null": lambda a, _b, _n: a is not None,
    "max_age": _max_age,
    "matches": _matches_regex,
}
OPS_WITHOUT_VALUE = {"is_true", "is_false", "not_null"}


def doubt(op: str, actual: Any, now: datetime) -> Optional[str]:
    """Why a present fact still leaves ``op`` unknown, where a missing or null one does not say it."""
    if op in ("contains", "not_contains") and _incomplete(actual):
        return "part of what decides it was not seen"
    moment = _moment(actual) if op == "max_age" else None
    if moment is not None and (moment - now).total_seconds() > MAX_AHEAD_S:
        return f"{actual} is in the future, beyond {MAX_AHEAD_S / 60:g} min of clock skew"
    return None
