"""The human-readable table that ``tillsyn-agent collect`` prints."""

from __future__ import annotations

from typing import Callable, Iterable, List, Mapping

from collectors.base import CollectorSpec
from evidence.model import Evidence

_STATUS_LABEL = {
    "complete": "ok",
    "partial": "PARTIAL",
    "not_present": "not present",
    "error": "ERROR",
}


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def render(
    records: Iterable[Evidence],
    specs: Mapping[str, CollectorSpec],
    width: int = 100,
) -> str:
    """One row per collector (controls, status, key facts), then what it could not see."""
    header = f"{'CONTROLS':<9} {'COLLECTOR':<16} {'STATUS':<12} KEY FACTS"
    lines: List[str] = [header, "-" * min(width, 100)]
    fact_width = max(20, width - 40)
    for record in records:
        summary: Callable[[Mapping[str, object]], str] = specs[record.collector].summary
        try:
            facts = summary(record.observed) if record.observed else ""
        except Exception as err:
            facts = f"(summary failed: {type(err).__name__})"
        controls = ",".join(record.controls) or "-"
        status = _STATUS_LABEL.get(record.status.value, record.status.value)
        lines.append(f"{controls:<9} {record.collector:<16} {status:<12} {_clip(facts or '-', fact_width)}")
        if record.error:
            lines.append(f"{'':<9} {'':<16} error: {_clip(record.error, fact_width + 6)}")
        for gap in record.gaps:
            lines.append(f"{'':<9} {'':<16} not seen: {_clip(gap.what + ': ' + gap.reason, fact_width + 3)}")
    return "\n".join(lines) + "\n"
