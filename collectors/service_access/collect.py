"""Read the socket table, the running processes and the vendor accounts through the Context, and
list the node's open service entrances (M11)."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from collectors.accounts.parse_keys import parse_authorized_keys
from collectors.accounts.parse_passwd import PasswdEntry, parse_passwd, parse_shadow
from collectors.base import Context, describe_os_error
from collectors.processes import psutil_processes
from collectors.service_access.parse_entrances import (
    account_record,
    listener_entrances,
    process_entrances,
    vendor_ports,
)
from evidence.model import Gap, Outcome

MAX_FILE = 4 * 1024 * 1024


def _read(ctx: Context, path: str, gaps: List[Gap], what: str) -> Optional[str]:
    try:
        return ctx.read_text(path, MAX_FILE)
    except OSError as err:
        gaps.append(Gap(what, describe_os_error(err, path)))
        return None


def _keys(ctx: Context, entry: PasswdEntry, gaps: List[Gap]) -> Optional[int]:
    count = 0
    for name in ctx.settings.get("authorized_keys", []):
        path = os.path.join(entry.home, str(name))
        try:
            text = ctx.read_text(path, MAX_FILE)
        except FileNotFoundError:
            continue
        except OSError as err:
            gaps.append(Gap(f"authorized keys of {entry.user}", describe_os_error(err, path)))
            return None
        count += len(parse_authorized_keys(text)[0])
    return count


def accounts(ctx: Context, gaps: List[Gap]) -> List[Dict[str, Any]]:
    """A record per configured vendor account (none configured: an empty list)."""
    names = [str(n) for n in ctx.settings.get("vendor_accounts", [])]
    if not names:
        return []
    passwd_text = _read(ctx, str(ctx.settings["passwd_file"]), gaps, "vendor accounts")
    if passwd_text is None:
        return [
            {"name": n, "present": None, "locked": None, "reason": "the account database could not be read"}
            for n in names
        ]
    shadow_text = _read(ctx, str(ctx.settings["shadow_file"]), gaps, "vendor accounts' passwords and expiry")
    entries = {e.user: e for e in parse_passwd(passwd_text)[0]}
    shadow = parse_shadow(shadow_text)[0] if shadow_text is not None else {}
    today = ctx.now().date()
    out = []
    for name in names:
        entry = entries.get(name)
        keys = _keys(ctx, entry, gaps) if entry is not None else 0
        out.append(account_record(name, entry, shadow.get(name), shadow_text is not None, keys, today))
    return out


def _owners(ctx: Context, pids: Sequence[int]) -> Dict[int, Tuple[Optional[str], Optional[str]]]:
    """Name and executable of each socket owner, from the round's lookups (the ports collector's)."""
    from collectors.ports.read_psutil import lookup_process

    out: Dict[int, Tuple[Optional[str], Optional[str]]] = {}
    for pid in pids:
        info, _gaps = lookup_process(ctx, pid)  # the ports collector reports what could not be read
        out[pid] = (info.name, info.exe)
    return out


def _processes(ctx: Context) -> List[Tuple[int, str]]:
    return [(proc.pid, str(name)) for proc, name in psutil_processes(ctx) if name]


def collect(
    ctx: Context, entries: Optional[Sequence[Any]] = None, processes: Optional[Sequence[Tuple[int, str]]] = None
) -> Outcome:
    """Entrances and vendor accounts; ``entries`` / ``processes`` replace the live tables in tests."""
    from collectors.ports import read_psutil, report
    from collectors.ports.parse_sockets import listeners

    gaps: List[Gap] = []
    if entries is None:
        read, why = read_psutil.connections(ctx)
        if read is None:
            return Outcome.failed(why or "cannot list sockets")
        entries = read
    found, problems = listeners(entries)
    if problems:
        gaps.append(Gap(report.entries(len(problems)), "unreadable: " + "; ".join(problems[:3])))
    owners = _owners(ctx, sorted({s.pids[0] for s in found if s.pids}))
    extra = vendor_ports(ctx.settings.get("vendor_ports", []))
    entrances = listener_entrances(found, owners, extra)
    unowned = sum(1 for e in entrances if e["remote_service"] is None)
    if unowned:
        gaps.append(
            Gap(
                f"owner of {report.sockets(unowned)}",
                "not root, or held by no process here: whether "
                + ("it is a remote-service tool" if unowned == 1 else "they are remote-service tools")
                + " is unknown",
            )
        )
    pids = [e["pid"] for e in entrances if e["pid"] is not None]
    entrances += process_entrances(
        _processes(ctx) if processes is None else processes, ctx.settings.get("remote_processes", []), pids
    )
    vendor = accounts(ctx, gaps)
    observed: Dict[str, Any] = {
        "entrances": entrances,
        "accounts": vendor,
        "counts": {
            "entrances": sum(1 for e in entrances if e["remote_service"]),
            "undecided": unowned,
            "accounts_unlocked": sum(1 for a in vendor if a["locked"] is False),
        },
    }
    return Outcome.from_parts(observed, gaps)


def summary(observed: Mapping[str, Any]) -> str:
    """One line for the ``collect`` table."""
    counts = observed.get("counts")
    if not isinstance(counts, Mapping):
        return ""
    line = (
        f"{counts.get('entrances', 0)} remote-service entrances open, "
        f"{counts.get('accounts_unlocked', 0)} vendor accounts unlocked"
    )
    return line + (f"; {counts['undecided']} sockets undecided" if counts.get("undecided") else "")
