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


_INDENT = " " * 40


def _wrap(first: str, text: str, width: int) -> List[str]:
    """``text`` after ``first``, wrapped under the key-facts column: nothing is cut off."""
    import textwrap  # its regexes cost a few ms to compile; `collect --json` never wraps

    return textwrap.wrap(
        " ".join(text.split()),
        width=max(width, 60),
        initial_indent=first,
        subsequent_indent=_INDENT + "  ",
        break_on_hyphens=False,
    ) or [first.rstrip()]


def render(
    records: Iterable[Evidence],
    specs: Mapping[str, CollectorSpec],
    width: int = 100,
) -> str:
    """One row per collector (controls, status, key facts), then what it could not see."""
    header = f"{'CONTROLS':<9} {'COLLECTOR':<16} {'STATUS':<12} KEY FACTS"
    lines: List[str] = [header, "-" * min(width, 100)]
    for record in records:
        summary: Callable[[Mapping[str, object]], str] = specs[record.collector].summary
        try:
            facts = summary(record.observed) if record.observed else ""
        except Exception as err:  # noqa: BLE001  a summary bug must not hide the row
            facts = f"(summary failed: {type(err).__name__})"
        controls = ",".join(record.controls) or "-"
        status = _STATUS_LABEL.get(record.status.value, record.status.value)
        lines += _wrap(f"{controls:<9} {record.collector:<16} {status:<12} ", facts or "-", width)
        if record.error:
            lines += _wrap(_INDENT + "error: ", record.error, width)
        for gap in record.gaps:
            lines += _wrap(_INDENT + "not seen: ", f"{gap.what}: {gap.reason}", width)
    return "\n".join(lines) + "\n"
