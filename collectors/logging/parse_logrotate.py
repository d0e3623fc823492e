"""logrotate's configuration: how long rotated logs are kept (pure).

logrotate(8): global directives, then ``path [path ...] { directives }`` blocks that inherit
them.  ``rotate N`` keeps N old logs, rotated ``daily``/``weekly``/``monthly``/``yearly`` (or
only by ``size``); ``maxage N`` removes rotated logs older than N days.  The retention in days is
``rotate`` times the period, capped by ``maxage``; unknown for size-only rotation.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

PERIOD_DAYS = {"hourly": 1 / 24, "daily": 1, "weekly": 7, "monthly": 30, "yearly": 365}


def _is_path_line(line: str) -> bool:
    first = line.strip().split(None, 1)[0] if line.strip() else ""
    return first.startswith(("/", '"', "'", "~")) or "*" in first


def split_blocks(text: str) -> Tuple[str, List[Tuple[List[str], str]]]:
    """The text outside blocks, and each block's paths and body (paths may span several lines)."""
    outside: List[str] = []
    blocks: List[Tuple[List[str], str]] = []
    rest = text
    while "{" in rest:
        before, _, after = rest.partition("{")
        inside, _, rest = after.partition("}")
        lines = before.splitlines()
        paths: List[str] = []
        while lines and (not lines[-1].strip() or _is_path_line(lines[-1])):
            line = lines.pop()
            paths = [p.strip("\"'") for p in line.split()] + paths
        outside.extend(lines)
        blocks.append((paths, inside))
    outside.extend(rest.splitlines())
    return "\n".join(outside), blocks


def _directives(text: str, inherited: Dict[str, Any]) -> Dict[str, Any]:
    values = dict(inherited)
    skipping = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word in ("postrotate", "prerotate", "firstaction", "lastaction", "preremove"):
            skipping = True
            continue
        if word == "endscript":
            skipping = False
            continue
        if skipping:
            continue
        if word in PERIOD_DAYS:
            values["frequency"] = word
        elif word in ("rotate", "maxage") and rest.strip().lstrip("-").isdigit():
            values[word] = int(rest.strip())
        elif word in ("size", "maxsize"):
            values.setdefault("frequency", None)
            values["size"] = rest.strip()
    return values


def retention_days(values: Dict[str, Any]) -> Optional[float]:
    rotate, frequency, maxage = values.get("rotate"), values.get("frequency"), values.get("maxage")
    days: Optional[float] = None
    if isinstance(rotate, int) and frequency in PERIOD_DAYS:
        days = max(rotate, 0) * PERIOD_DAYS[frequency]
    if isinstance(maxage, int) and maxage > 0:
        days = min(days, maxage) if days is not None else float(maxage)
    return days


def parse(global_text: str, files: Dict[str, str]) -> Dict[str, Any]:
    """The defaults of ``global_text`` (logrotate.conf) and every block there and in ``files``."""
    outside, _ = split_blocks(global_text)
    defaults = _directives(outside, {"rotate": 0, "frequency": None})
    blocks: List[Dict[str, Any]] = []
    for source, text in [("logrotate.conf", global_text), *sorted(files.items())]:
        for paths, body in split_blocks(text)[1]:
            if not paths:
                continue
            values = _directives(body, defaults)
            blocks.append(
                {
                    "paths": paths,
                    "frequency": values.get("frequency"),
                    "rotate": values.get("rotate"),
                    "maxage": values.get("maxage"),
                    "retention_days": retention_days(values),
                    "source": source,
                }
            )
    return {
        "default_frequency": defaults.get("frequency"),
        "default_rotate": defaults.get("rotate"),
        "default_retention_days": retention_days(defaults),
        "files": blocks,
    }


def block_of(parsed: Dict[str, Any], path: str) -> Optional[Dict[str, Any]]:
    """The first block naming ``path``, exactly or by a shell pattern (``/var/log/*.log``)."""
    import fnmatch

    for block in parsed["files"]:
        if any(p == path or fnmatch.fnmatch(path, p) for p in block["paths"]):
            return block  # type: ignore[no-any-return]
    return None


def retention_of(parsed: Dict[str, Any], path: str) -> Optional[float]:
    """The retention in days of the block naming ``path`` (None: no block, or size-only rotation)."""
    block = block_of(parsed, path)
    return None if block is None else block["retention_days"]
