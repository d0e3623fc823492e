"""The sentence of a verdict: what a rule found, with the observed value, in words.

Pure.  A rule's ``say`` templates (evidence/sentences.py) name the facts; a rule without them
still gets a readable default built from its title and shown values.  The engine's own account
(paths and operators) stays in ``Result.detail`` for the policy's author.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, List, Mapping, Optional

from evidence.model import parse_utc
from evidence.sentences import Context, Template, duration_words, join, label, limit_of, render, words

if TYPE_CHECKING:  # evidence.rules imports this module
    from evidence.rules import Result, Rule


def _age(seconds: float) -> str:
    return duration_words(round(seconds / 60) * 60) if seconds >= 60 else f"{seconds:.0f} s"


def _collector(rule: Rule) -> str:
    """The collector in words: ``disk_encryption`` reads ``disk encryption``."""
    return rule.collector.replace("_", " ")


def _whether(rule: Rule) -> str:
    """``cannot tell whether <the rule's title>``: a title is a statement (Every UPS runs on line power)."""
    title = rule.title
    if title[:1].isupper() and not title[1:2].isupper():
        title = title[0].lower() + title[1:]
    return f"cannot tell whether {title}"


def _gap_reasons(record: Mapping[str, Any]) -> str:
    reasons = []
    for gap in record.get("gaps") or []:
        what, why = str(gap.get("what") or ""), str(gap.get("reason") or "")
        reasons.append(why if what in ("", "everything") else f"{what}: {why}")
    return "; ".join(reasons)


def _context(rule: Rule, observed: Mapping[str, Any], now: datetime) -> Context:
    test = rule.check.test
    listed = observed.get(rule.check.path) if isinstance(observed, Mapping) else None
    count = len(listed) if isinstance(listed, list) else None
    return Context(now, limit_of(test.op, test.value) if test else None, count)


def _each(template: Optional[Template], items: List[Any], ctx: Context, default: str) -> str:
    return join([render(template, item, ctx) if template else f"{default}{label(item)}" for item in items])


def _whole(ctx: Context, observed: Any) -> Context:
    return replace(ctx, value=observed, whole=True)


def _failing(rule: Rule, observed: Any, ctx: Context, root: Mapping[str, Any]) -> str:
    check = rule.check
    template = rule.template("failing")
    if check.expect in ("value", "count"):
        if template:  # a rule on one value may name any other fact of the record: {reason}
            return render(template, root, _whole(ctx, observed))
        return f"{rule.title}: not met (observed: {words(observed)})"
    items = observed if isinstance(observed, list) else []
    if not items:
        empty = rule.template("empty")
        return render(empty, None, ctx) if empty else f"{rule.title}: not met, nothing reported"
    return _each(template, items, ctx, f"{rule.title}: not met by ")


def _passing(rule: Rule, observed: Any, ctx: Context, root: Mapping[str, Any]) -> str:
    template = rule.template("passing")
    if template and rule.check.expect in ("value", "count"):
        return render(template, root, _whole(ctx, observed))
    if template:
        return render(template, observed, ctx)
    if rule.check.expect in ("value", "count"):
        return f"{rule.title} (observed: {words(observed)})"
    return f"{rule.title} ({ctx.count if ctx.count is not None else 'all'} checked)"


def _unknown(rule: Rule, record: Mapping[str, Any], ctx: Context, now: datetime) -> str:
    from evidence.rules import undecided  # the engine, which imports this module

    template = rule.template("unknown")
    unsure = undecided(rule.check, record.get("observed") or {}, now)
    if not unsure and ctx.count == 0:
        empty = rule.template("empty")
        text = f"cannot tell: {render(empty, None, ctx)}" if empty else f"{_whether(rule)}: nothing reported"
    elif not unsure:
        text = f"{_whether(rule)}: nothing reported could be checked"
    else:
        parts = []
        for item, why in unsure:
            if item is None and rule.check.expect not in ("value", "count"):
                parts.append(f"{_whether(rule)}: {why}")  # the list itself was not reported
            elif template and rule.check.expect in ("value", "count"):
                root = record.get("observed") or {}
                parts.append(f"{render(template, root, _whole(ctx, item))}: {why}")
            elif template:
                parts.append(f"{render(template, item, ctx)}: {why}")
            elif rule.check.expect == "value" or item is None:
                parts.append(f"{_whether(rule)}: {why}")
            else:
                parts.append(f"cannot tell for {label(item)}: {why}")
        text = join(parts)
    gaps = _gap_reasons(record)
    return text + (f" (not seen: {gaps})" if gaps else "")


def tell(result: Result, record: Mapping[str, Any], now: datetime) -> str:
    """One sentence for ``result``, judged on ``record`` (the collector's latest evidence)."""
    rule, verdict = result.rule, result.verdict.value
    if verdict == "stale":
        seconds = (now - parse_utc(str(record["collected_at"]))).total_seconds()
        return (
            f"the latest {_collector(rule)} evidence is {_age(seconds)} old "
            f"(evidence older than {duration_words(rule.max_age_s)} is not judged)"
        )
    if record.get("status") == "error":
        return f"cannot tell: {_collector(rule)} collector error: {record.get('error')}"
    if record.get("status") == "not_present":
        reasons = _gap_reasons(record) or f"the {_collector(rule)} collector found nothing to check"
        return {"failing": "not present on this node: ", "passing": "not applicable: "}.get(
            verdict, "cannot tell, not present on this node: "
        ) + reasons
    observed = record.get("observed") or {}
    ctx = _context(rule, observed, now)
    if verdict == "failing":
        return _failing(rule, result.observed, ctx, observed)
    if verdict == "passing":
        return _passing(rule, result.observed, ctx, observed)
    return _unknown(rule, record, ctx, now)


def resolved(rule: Rule, observed: Any, now: datetime) -> str:
    """What changed when a failing finding passes again, said of what it had observed failing."""
    template = rule.template("resolved")
    ctx = _context(rule, {}, now)
    if isinstance(observed, Mapping) and "not_present" in observed:
        return f"{rule.title}: now present and met"
    if template is None:
        return f"{rule.title}: met again"
    if rule.check.expect in ("value", "count") or not isinstance(observed, list) or not observed:
        return render(template, observed if rule.check.expect in ("value", "count") else None, ctx)
    return join([render(template, item, ctx) for item in observed])
