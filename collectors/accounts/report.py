"""Assemble the accounts collector's observed facts from what the parsers read.  Pure."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from collectors.accounts.parse_passwd import PasswdEntry, ShadowEntry, password_state

NO_LOGIN = frozenset({"nologin", "false", "true", "sync", "halt", "shutdown"})
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class Inputs:
    passwd: List[PasswdEntry]
    shadow: Optional[Mapping[str, ShadowEntry]]
    """None when /etc/shadow could not be read."""
    groups: Optional[Mapping[str, Tuple[int, List[str]]]]
    uid_min: int
    sudo_rules: List[Optional[Dict[str, Any]]]
    """A None member: some sudoers file could not be read."""
    keys: Mapping[str, Optional[Dict[str, Any]]]
    last_login: Mapping[str, datetime]
    lastlog_read: bool
    wtmp_read: bool
    now: datetime
    dormant_days: int
    admin_groups: Sequence[str]
    notes: List[str] = field(default_factory=list)


def login_shell(shell: str) -> bool:
    """An empty shell is /bin/sh (passwd(5)); nologin, false and the like are not login shells."""
    return os.path.basename(shell.strip()) not in NO_LOGIN


def _day(day: Optional[int]) -> Optional[datetime]:
    if day is None:
        return None
    try:
        return EPOCH + timedelta(days=day)
    except OverflowError:
        return None


def _groups_of(entry: PasswdEntry, groups: Optional[Mapping[str, Tuple[int, List[str]]]]) -> Optional[List[str]]:
    if groups is None:
        return None
    return sorted(name for name, (gid, members) in groups.items() if gid == entry.gid or entry.user in members)


def _dormant(
    locked: Optional[bool],
    expired: Optional[bool],
    last: Optional[datetime],
    never: Optional[bool],
    changed: Optional[datetime],
    inputs: Inputs,
) -> Optional[bool]:
    if locked or expired:
        return False  # it cannot log in: not dormant but closed
    limit = inputs.now - timedelta(days=inputs.dormant_days)
    if last is not None:
        return last < limit
    if never:
        # never logged in: dormant unless its password was set recently (a new account)
        return not (changed is not None and changed >= limit)
    return None


def account(entry: PasswdEntry, inputs: Inputs) -> Dict[str, Any]:
    shadow = inputs.shadow.get(entry.user) if inputs.shadow is not None else None
    state = password_state(entry.password, shadow, inputs.shadow is not None)
    needs_shadow = entry.password == "x"  # noqa: S105  the shadow marker
    locked = None if state is None else state in ("locked", "disabled", "missing")
    expires = _day(shadow.expire_day) if shadow else None
    expired: Optional[bool] = (expires <= inputs.now if expires else False) if inputs.shadow is not None else None
    if not needs_shadow and inputs.shadow is None:
        expired = None
    last = inputs.last_login.get(entry.user)
    never: Optional[bool] = None
    if last is None and inputs.lastlog_read:
        never = True  # lastlog keeps every uid's last login for ever; wtmp only since rotation
    elif last is not None:
        never = False
    changed = _day(shadow.last_change_day) if shadow else None
    groups = _groups_of(entry, inputs.groups)
    admin = None if groups is None else [g for g in groups if g in inputs.admin_groups]
    return {
        "user": entry.user,
        "uid": entry.uid,
        "gid": entry.gid,
        "home": entry.home,
        "shell": entry.shell or "/bin/sh",
        "login_shell": login_shell(entry.shell),
        "personal": entry.uid >= inputs.uid_min,
        "password": state,
        "locked": locked,
        "expired": expired,
        "expires": expires.date().isoformat() if expires else None,
        "last_login": last.isoformat().replace("+00:00", "Z") if last else None,
        "never_logged_in": never,
        "dormant": _dormant(locked, expired, last, never, changed, inputs),
        "groups": groups,
        "admin_groups": admin,
        "authorized_keys": inputs.keys.get(entry.user),
    }


def duplicate_uids(entries: Sequence[PasswdEntry]) -> List[Dict[str, Any]]:
    by_uid: Dict[int, List[str]] = {}
    for entry in entries:
        by_uid.setdefault(entry.uid, []).append(entry.user)
    return [{"uid": uid, "users": users} for uid, users in sorted(by_uid.items()) if len(users) > 1]


def admin_members(inputs: Inputs) -> Optional[List[Dict[str, str]]]:
    if inputs.groups is None:
        return None
    members: List[Dict[str, str]] = []
    for name in inputs.admin_groups:
        if name not in inputs.groups:
            continue
        gid, listed = inputs.groups[name]
        users = set(listed) | {e.user for e in inputs.passwd if e.gid == gid}
        members += [{"group": name, "user": user} for user in sorted(users)]
    return members


def assemble(inputs: Inputs) -> Dict[str, Any]:
    listed = [e for e in inputs.passwd if login_shell(e.shell) or e.uid == 0]
    accounts = [account(e, inputs) for e in listed]
    return {
        "uid_min": inputs.uid_min,
        "accounts": accounts,
        "login_accounts": sum(1 for a in accounts if a["login_shell"]),
        "duplicate_uids": duplicate_uids(inputs.passwd),
        "admin_group_members": admin_members(inputs),
        "sudo_rules": inputs.sudo_rules,
        "dormant_days": inputs.dormant_days,
    }
