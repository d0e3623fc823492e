"""The rule engine: one rule, one node's latest evidence, a verdict with the observed value.

Pure: no I/O, no clock of its own (``now`` is passed in).  Every test is
three-valued (true / false / unknown): a missing or null fact is unknown, and
unknown is never passing.  The policy file format is in docs/policy.md.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Dict, List, Optional, Sequence, Tuple

from evidence.model import parse_utc
from evidence.operators import OPERATORS, OPS_WITHOUT_VALUE, Tri, doubt, parse_duration
from evidence.sentences import Template, words
from evidence.telling import tell

__all__ = [
    "OPERATORS",
    "OPS_WITHOUT_VALUE",
    "Check",
    "Result",
    "Rule",
    "Test",
    "Verdict",
    "evaluate",
    "evaluate_check",
    "lookup",
    "parse_duration",
]

MAX_SHOWN = 20


class Verdict(str, enum.Enum):
    PASSING = "passing"
    FAILING = "failing"
    UNKNOWN = "unknown"
    """Evidence arrived but does not say (collector error, fact missing or unreadable)."""
    STALE = "stale"
    """No evidence within the rule's maximum age."""


def lookup(data: Any, path: str) -> Any:
    """``a.b.c`` into nested mappings; None when any step is missing."""
    for part in path.split(".") if path else []:
        if not isinstance(data, Mapping) or part not in data:
            return None
        data = data[part]
    return data


@dataclass(frozen=True)
class Test:
    field: str
    op: str
    value: Any = None

    def __call__(self, item: Any, now: datetime) -> Tri:
        return OPERATORS[self.op](lookup(item, self.field), self.value, now)

    def doubt(self, item: Any, now: datetime) -> Optional[str]:
        """Why this test is unknown for ``item`` beyond a missing fact, e.g. a time in the future."""
        why = doubt(self.op, lookup(item, self.field), now)
        return f"{self.field or 'value'}: {why}" if why else None

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
    say: Tuple[Tuple[str, Template], ...] = ()
    """Sentence templates by kind (failing, passing, unknown, resolved, empty): evidence/sentences.py."""
    depends_on: Tuple[str, ...] = ()
    """Rules of the same node whose failure explains this one's: while one fails, this one pages nobody."""

    def template(self, kind: str) -> Optional[Template]:
        return dict(self.say).get(kind)


@dataclass(frozen=True)
class Result:
    rule: Rule
    verdict: Verdict
    observed: Any
    message: str
    """One sentence a person reads, with the observed value (the rule's ``say`` templates)."""
    evidence_at: Optional[datetime] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    detail: str = ""
    """The engine's own account of the check (paths and operators), for the policy's author."""


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


def _doubts(tests: Sequence[Optional[Test]], items: Sequence[Any], now: datetime) -> str:
    """``: <why>`` for undecided items, when more than a missing or null fact explains them."""
    found: List[str] = []
    for item in items:
        for test in tests:
            why = test.doubt(item, now) if test is not None else None
            if why and why not in found:
                found.append(why)
    return f": {'; '.join(found[:3])}" if found else ""


def evaluate_check(check: Check, observed: Mapping[str, Any], now: datetime) -> Tuple[Tri, Any, str]:
    """(verdict, observed value, message) of one check; verdict None means unknown."""
    value = lookup(observed, check.path)
    if check.expect == "value":
        assert check.test is not None
        outcome = check.test(value, now)
        word = {True: "ok", False: "deviates", None: "unknown"}[outcome]
        why = _doubts([check.test], [value], now) if outcome is None else ""
        return outcome, value, f"{check.path} = {value!r}: {word} ({check.test.describe()}){why}"
    if not isinstance(value, list):
        return None, value, f"{check.path} was not reported as a list"
    matched = [(i, _matches(i, check.where, now)) for i in value]
    items = [i for i, m in matched if m is True]
    unsure = [i for i, m in matched if m is None]  # the where-filter itself is unknown for these
    if check.expect == "count":
        assert check.test is not None
        outcome = _tally(check.test, len(items), len(unsure), now)
        extra = f" (+{len(unsure)} undecided)" if unsure else ""
        why = _doubts(check.where, unsure, now) if outcome is None else ""
        return outcome, len(items), f"{len(items)}{extra} {check.path} ({check.test.describe()}){why}"
    if check.expect == "none":
        if items:
            shown = [_show(i, check.show) for i in items[:MAX_SHOWN]]
            return False, shown, f"{len(items)} {check.path} where none is allowed"
        if unsure:
            why = _doubts(check.where, unsure, now)
            return (
                None,
                [_show(i, check.show) for i in unsure[:MAX_SHOWN]],
                f"{len(unsure)} {check.path} undecided{why}",
            )
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
                f"{len(undecided)} of {total} unknown for {what}{_doubts([check.test, *check.where], undecided, now)}",
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
        why = _doubts([check.test, *check.where], undecided, now)
        return None, [_show(i, check.show) for i in undecided[:MAX_SHOWN]], f"none known to pass {what}{why}"
    if not items:  # none would pass, but maybe none is selected: then if_empty decides
        return (False if check.if_empty == "fail" else None), [], f"no {check.path} known to be selected"
    return False, [_show(i, check.show) for i in bad[:MAX_SHOWN]], f"none of {total} pass {what}"


def _unsure_why(tests: Sequence[Optional[Test]], item: Any, now: datetime) -> Optional[str]:
    """Why in words, without the fact's name (the rule's sentence already says what was asked)."""
    for test in tests:
        if test is not None and test(item, now) is None:
            value = lookup(item, test.field)
            why = doubt(test.op, value, now)
            return why or ("not reported" if value is None else f"{words(value)} cannot be judged")
    return None


def undecided(check: Check, observed: Mapping[str, Any], now: datetime) -> List[Tuple[Any, str]]:
    """The items (projected through ``show``) a check could not decide, each with why, in words."""
    value = lookup(observed, check.path)
    if check.expect == "value":
        why = _unsure_why([check.test], value, now)
        return [(value, why)] if why else []
    if not isinstance(value, list):
        return [(None, "not reported" if value is None else f"{words(value)} reported where a list was expected")]
    out: List[Tuple[Any, str]] = []
    for item in value:
        why = _unsure_why([*check.where, check.test], item, now)
        if why:
            out.append((_show(item, check.show), why))
    return out


def evaluate(rule: Rule, record: Optional[Mapping[str, Any]], now: datetime) -> Result:
    """The verdict of ``rule`` on a node's latest evidence record of ``rule.collector``."""
    if record is None:
        return Result(rule, Verdict.STALE, None, f"no evidence from the {rule.collector} collector yet")
    result = _judge(rule, record, now)
    return replace(result, detail=result.message, message=tell(result, record, now))


def _judge(rule: Rule, record: Mapping[str, Any], now: datetime) -> Result:
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
