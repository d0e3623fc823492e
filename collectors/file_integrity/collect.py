"""Compare the watched files with the baseline in the state directory; each change is evidence.

The daemon runs this collector at once when a watched file changes (its ``watch_paths``), on its
interval, and at start-up, so changes made while the agent was stopped are found then.  Only the
daemon's runs move the baseline on (``Context.keep_state``); ``collect`` and ``check`` compare
with it and leave it.  Who made a change comes from the kernel audit log when it has a record.
"""

from __future__ import annotations

import os
import secrets
from typing import Any, Dict, List, Mapping, Optional, Tuple

from collectors.base import Context, describe_os_error
from collectors.file_integrity import report, store_baseline
from collectors.file_integrity.compare import compare
from collectors.file_integrity.parse_audit import last_actors
from collectors.file_integrity.read_files import scan
from evidence.model import Gap, Outcome, utc_iso

THIS_PROCESS = f"{os.getpid()}-{secrets.token_hex(6)}"
"""Which agent process wrote the baseline: a pid alone comes back after a reboot (a service
started early often gets the same one), and then a change made while it was down would not be
marked ``found_at_startup``."""
AUDIT_HINT = "add audit watches such as 'auditctl -w /etc/passwd -p wa -k tillsyn' (docs/collectors/file_integrity.md)"


def _audit(ctx: Context, paths: List[str], gaps: List[Gap]) -> Tuple[Dict[str, Dict[str, Any]], Optional[str]]:
    log = str(ctx.settings["audit_log"])
    try:
        with open(ctx.path(log), "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - int(ctx.settings["audit_max_bytes"])))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError as err:
        note = f"who changed it is unknown: {describe_os_error(err, log)}; {AUDIT_HINT}"
        gaps.append(Gap("who made the changes", note))
        return {}, note
    actors, _bad = last_actors(text, paths)
    return actors, None


def collect(ctx: Context) -> Outcome:
    settings = ctx.settings
    roots = ["/" + str(p).strip("/") for p in settings["paths"]]
    now = scan(ctx, roots, int(settings["max_files"]), int(settings["max_file_bytes"]))
    gaps: List[Gap] = [Gap("a watched path", p) for p in now.problems[:5]]
    if now.truncated:
        gaps.append(Gap("files beyond max_files", f"only the first {settings['max_files']} files are watched"))
    old, why = store_baseline.load(ctx.state_dir)
    created = old is None and ctx.keep_state and ctx.state_dir is not None
    changes: List[Dict[str, Any]] = []
    listed: List[Optional[Dict[str, Any]]] = []
    if old is not None:
        common = [r for r in roots if r in (old.get("roots") or [])]
        changes = compare(old["files"], now.files, common)
    elif not ctx.keep_state:
        gaps.append(Gap("changes", why or "no baseline yet: the daemon makes one at its first run"))
        listed = [None]
    elif why:
        gaps.append(Gap("earlier baseline", why))
    if changes:
        users = report.names(_read(ctx, "/etc/passwd"))
        groups = report.names(_read(ctx, "/etc/group"))
        actors, note = _audit(ctx, [c["path"] for c in changes], gaps)
        limit = int(settings["max_listed"])
        listed = [report.describe(c, users, groups, actors.get(c["path"]), note) for c in changes[:limit]]
    observed: Dict[str, Any] = {
        "paths": roots,
        "missing_paths": now.missing_roots,
        "files": len(now.files),
        "baseline_created": bool(created),
        "baseline_since": old.get("written_at") if old else None,
        "found_at_startup": bool(ctx.keep_state and old is not None and old.get("process") != THIS_PROCESS and changes),
        "changes_total": len(changes) if listed != [None] else None,
        "changes": listed,
        "summarised": len(changes) > len(listed),
        "summary": report.summarise(changes) if len(changes) > len(listed) else None,
    }
    # Written (with an fsync of file and directory) only when it changes, or once per process so
    # that ``found_at_startup`` knows which process compared last.
    stale = old is None or bool(changes) or old.get("process") != THIS_PROCESS or old.get("roots") != roots
    if ctx.keep_state and ctx.state_dir is not None and stale:
        data = {"format": store_baseline.FORMAT, "written_at": utc_iso(ctx.now()), "process": THIS_PROCESS}
        try:
            store_baseline.save(ctx.state_dir, {**data, "roots": roots, "files": now.files})
        except OSError as err:
            gaps.append(Gap("baseline", f"not saved, the same changes will be reported again: {err.strerror or err}"))
    return Outcome.from_parts(observed, gaps)


def _read(ctx: Context, path: str) -> Optional[str]:
    try:
        return ctx.read_text(path)
    except OSError:
        return None


def summary(observed: Mapping[str, Any]) -> str:
    """One line for the ``collect`` table."""
    total = observed.get("changes_total")
    if not isinstance(total, int):
        return ""
    line = f"{observed.get('files', 0)} files watched, {total} changed"
    if observed.get("baseline_created"):
        line += " (baseline made now)"
    return line
