"""The backup collector's entry: every configured backup read in turn, one failure making the result
partial, not an error; and the one-line summary."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple

from collectors.backup.settings import backups
from collectors.base import Context
from evidence.model import Gap, Outcome

if TYPE_CHECKING:
    from collectors.mounts import MountEntry


def collect(ctx: Context) -> Outcome:
    """Probe every configured backup; one unreadable backup makes the result partial, not an error."""
    configured = backups(ctx.settings, ctx.state_dir)
    if not configured:
        return Outcome.not_present("no backup configured in agent.yaml (collectors.backup.backups is empty)")
    # Imported here so that a node without backups never pays for the parsers.
    from collectors.backup.read_backup import probe
    from collectors.mounts import read_mountinfo

    cache: Dict[str, Tuple[Optional[List[MountEntry]], str]] = {}

    def mounts() -> Tuple[Optional[List[MountEntry]], str]:
        """The mount table, or None and why it could not be read (read once, when first needed)."""
        if "m" not in cache:
            cache["m"] = read_mountinfo(ctx)
        return cache["m"]

    entries: List[Dict[str, Any]] = []
    gaps: List[Gap] = []
    seen = set()
    for backup in configured:
        if backup.name in seen:
            gaps.append(Gap(f"backup {backup.name}", "the name is configured twice; names must be unique"))
        seen.add(backup.name)
        entry, found = probe(ctx, backup, dict(ctx.settings), mounts)
        entries.append(entry)
        gaps.extend(found)
    observed = {
        "backups": entries,
        "configured": len(entries),
        "readable": sum(1 for e in entries if e["status"] == "ok"),
    }
    return Outcome.from_parts(observed, gaps)


def summary(observed: Mapping[str, Any]) -> str:
    """E.g. ``db restic 2026-11-20T10:00:00Z enc off-host; files borg: error``."""
    parts = []
    for entry in observed.get("backups") or []:
        if entry.get("status") != "ok":
            parts.append(f"{entry.get('name')} {entry.get('type')}: {entry.get('status')}")
            continue
        enc = {True: "enc", False: "NOT enc", None: "enc ?"}[entry.get("encrypted")]
        sep = {True: "off-host", False: "ON HOST", None: "where ?"}[entry.get("separate")]
        parts.append(f"{entry.get('name')} {entry.get('type')} {entry.get('last_success_at') or 'never'} {enc} {sep}")
    return "; ".join(parts)
