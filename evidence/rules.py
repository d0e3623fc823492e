"""The rule engine: one rule, one node's latest evidence, a verdict with the observed value.

Pure: no I/O, no clock of its own (``now`` is passed in).  Every test is
three-valued (true / false / unknown): a missing or null fact is unknown, and
unknown is never passing.  The policy file format is in docs/policy.md.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from evidence.model import parse_utc

MAX_SHOWN = 20


class Verdict(str, enum.Enum):
    PASSING = "passing"
    FAILING = "failing"
    UNKNOWN = "unknown"
    """Evidence arrived but does not say (collector error, fact missing or unreadable)."""
    STALE = "stale"
    """No evidence within the rule's maximum age."""


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


def lookup(data: Any, path: str) -> Any:
    """``a.b.c`` into nested mappings; None when any step is missing."""
    for part in path.split(".") if path else []:
        if not isinstance(data, Mapping) or part not in data:
            return None
        data = data[part]
    return data


Tri = Optional[bool]


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


def _max_age(actual: Any, expected: Any, now: datetime) -> Tri:
    if not isinstance(actual, str):
        return None
    if len(actual) == 10:  # a bare date (YYYY-MM-DD), as some UPSes report their self-test
        actual += "T00:00:00Z"
    try:
        moment = parse_utc(actual)
    except ValueError:
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
    "contains": _compare(lambda a, b: b in a),
    "not_contains": _compare(lambda a, b: b not in a),
    "is_true": _bool_is(True),
    "is_false": _bool_is(False),
    "not_null": lambda a, _b, _n: a is not None,
    "max_age": _max_age,
    "matches": _matches_regex,
}
OPS_WITHOUT_VALUE = {"is_true", "is_false", "not_null"}


@dataclass(frozen=True)
class Test:
    field: str
    op: str
    value: Any = None

    def __call__(self, item: Any, now: datetime) -> Tri:
        return OPERATORS[self.op](lookup(item, self.field), self.value, now)

    def describe(self) -> str:
        return f"{self.field or 'value'} {self.op}" + ("" if self.op in OPS_WITHOUT_VALUE else f" {self.value!r}")


@dataclass(frozen=True)
class Check:
    """What to test in ``observed``: a value, or items of a list (all / any / none / count)."""

    path: str
    expect: str = "value"
    test: Optional[Test] = None
    where: Tuple[Test, ...] = ()
    show: Tuple[str, ...] = ()
    if_empty: str = "unknown"


@dataclass(frozen=True)
class Rule:
    id: str
    version: int
    title: str
    controls: Tuple[str, ...]
    severity: str
    collector: str
    check: Check
    max_age_s: float
    rationale: str = ""
    remediation: str = ""
    iso27001: Tuple[str, ...] = ()
    gdpr: Tuple[str, ...] = ()
    when_not_present: str = "fail"
    enabled: bool = True


@dataclass(frozen=True)
class Result:
    rule: Rule
    verdict: Verdict
    observed: Any
    message: str
    evidence_at: Optional[datetime] = None
    extra: Dict[str, Any] = field(default_factory=dict)


def _show(item: Any, fields: Sequence[str]) -> Any:
    if not fields or not isinstance(item, Mapping):
        return item
    return {f: lookup(item, f) for f in fields}


def _matches(item: Any, where: Sequence[Test], now: datetime) -> Tri:
    result: Tri = True
    for test in where:
        outcome = test(item, now)
        if outcome is False:
            return False
        if outcome is None:
            result = None
    return result


def _tally(test: Test, known: int, unsure: int, now: datetime) -> Tri:
    """A count test when ``unsure`` more items may or may not match: decided only if every count agrees."""
    outcomes = {test(n, now) for n in range(known, known + unsure + 1)}
    return outcomes.pop() if len(outcomes) == 1 else None


def evaluate_check(check: Check, observed: Mapping[str, Any], now: datetime) -> Tuple[Tri, Any, str]:
    """(verdict, observed value, message) of one check; verdict None means unknown."""
    value = lookup(observed, check.path)
    if check.expect == "value":
        assert check.test is not None
        outcome = check.test(value, now)
        word = {True: "ok", False: "deviates", None: "unknown"}[outcome]
        return outcome, value, f"{check.path} = {value!r}: {word} ({check.test.describe()})"
    if not isinstance(value, list):
        return None, value, f"{check.path} was not reported as a list"
    matched = [(i, _matches(i, check.where, now)) for i in value]
    items = [i for i, m in matched if m is True]
    unsure = [i for i, m in matched if m is None]  # the where-filter itself is unknown for these
    if check.expect == "count":
        assert check.test is not None
        outcome = _tally(check.test, len(items), len(unsure), now)
        extra = f" (+{len(unsure)} undecided)" if unsure else ""
        return outcome, len(items), f"{len(items)}{extra} {check.path} ({check.test.describe()})"
    if check.expect == "none":
        if items:
            shown = [_show(i, check.show) for i in items[:MAX_SHOWN]]
            return False, shown, f"{len(items)} {check.path} where none is allowed"
        if unsure:
            return None, [_show(i, check.show) for i in unsure[:MAX_SHOWN]], f"{len(unsure)} {check.path} undecided"
        return True, [], f"no {check.path} match"
    assert check.test is not None and check.expect in ("all", "any")
    if not items and not unsure:
        verdict = {"pass": True, "fail": False, "unknown": None}[check.if_empty]
        return verdict, [], f"no {check.path} to check"
    results = [(i, check.test(i, now)) for i in items]
    maybe = [(i, check.test(i, now)) for i in unsure]
    bad = [i for i, r in results if r is False]
    good = [i for i, r in results if r is True]
    what = check.test.describe()
    total = len(items) + len(unsure)
    if check.expect == "all":
        # An item the filter may or may not select matters only if it could fail the test.
        undecided = [i for i, r in results if r is None] + [i for i, r in maybe if r is not True]
        if bad:
            return False, [_show(i, check.show) for i in bad[:MAX_SHOWN]], f"{len(bad)} of {total} fail {what}"
        if undecided:
            return (
                None,
                [_show(i, check.show) for i in undecided[:MAX_SHOWN]],
                f"{len(undecided)} of {total} unknown for {what}",
            )
        if not good:  # all would pass, but maybe none is selected: then if_empty decides
            verdict = True if check.if_empty == "pass" else None
            return verdict, [], f"no {check.path} known to be selected"
        return True, len(good), f"all {len(good)} pass {what}"
    # any: an item the filter may or may not select matters only if it could pass the test.
    undecided = [i for i, r in results if r is None] + [i for i, r in maybe if r is not False]
    if good:
        return True, [_show(i, check.show) for i in good[:MAX_SHOWN]], f"{len(good)} pass {what}"
    if undecided:
        return None, [_show(i, check.show) for i in undecided[:MAX_SHOWN]], f"none known to pass {what}"
    if not items:  # none would pass, but maybe none is selected: then if_empty decides
        return (False if check.if_empty == "fail" else None), [], f"no {check.path} known to be selected"
    return False, [_show(i, check.show) for i in bad[:MAX_SHOWN]], f"none of {total} pass {what}"


def evaluate(rule: Rule, record: Optional[Mapping[str, Any]], now: datetime) -> Result:
    """The verdict of ``rule`` on a node's latest evidence record of ``rule.collector``."""
    if record is None:
        return Result(rule, Verdict.STALE, None, f"no evidence from the {rule.collector} collector yet")
    collected = parse_utc(str(record["collected_at"]))
    age = (now - collected).total_seconds()
    if age > rule.max_age_s:
        return Result(
            rule,
            Verdict.STALE,
            None,
            f"latest {rule.collector} evidence is {age / 3600:.1f} h old (maximum {rule.max_age_s / 3600:g} h)",
            collected,
        )
    status = record.get("status")
    gaps = "; ".join(f"{g.get('what')}: {g.get('reason')}" for g in record.get("gaps") or [])
    if status == "error":
        return Result(rule, Verdict.UNKNOWN, None, f"collector error: {record.get('error')}", collected)
    if status == "not_present":
        verdict = {"fail": Verdict.FAILING, "pass": Verdict.PASSING, "unknown": Verdict.UNKNOWN}[rule.when_not_present]
        note = "not applicable: " if verdict is Verdict.PASSING else "not present: "
        return Result(rule, verdict, {"not_present": gaps}, note + gaps, collected)
    outcome, observed, message = evaluate_check(rule.check, record.get("observed") or {}, now)
    if outcome is None:
        return Result(rule, Verdict.UNKNOWN, observed, message + (f" — not seen: {gaps}" if gaps else ""), collected)
    return Result(rule, Verdict.PASSING if outcome else Verdict.FAILING, observed, message, collected)
