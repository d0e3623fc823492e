"""Comparing an export with what it should say, field by field, each difference named by its path."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List

_KEYS = ("id", "rule_id", "report_id")


@dataclass(frozen=True)
class Problem:
    where: str
    message: str
    note: bool = False
    """A note is something that could not be checked (deleted by retention), not a discrepancy."""

    def __str__(self) -> str:
        return f"{'NOTE' if self.note else 'MISMATCH'} {self.where}: {self.message}"


def _label(item: Any, index: int) -> str:
    if isinstance(item, dict):
        for key in _KEYS:
            if isinstance(item.get(key), (str, int)):
                return str(item[key])
    return str(index)


def short(value: Any) -> str:
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
                yield Problem(f"{where}.{key}", f"missing from the export ({other}: {short(actual[key])})")
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
        yield Problem(where, f"export says {short(exported)}, {other} says {short(actual)}")
