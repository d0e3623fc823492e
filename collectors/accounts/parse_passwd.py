"""Parse /etc/passwd, /etc/shadow, /etc/group and login.defs (passwd(5), shadow(5), group(5)).

Pure.  A line that does not have the right number of fields is counted and skipped, never raised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

_NUMBER = re.compile(r"^[0-9]{1,10}$")


@dataclass(frozen=True)
class PasswdEntry:
    user: str
    password: str
    """The passwd field: ``x`` (in shadow), empty (no password at all) or a hash."""
    uid: int
    gid: int
    home: str
    shell: str


@dataclass(frozen=True)
class ShadowEntry:
    user: str
    password: str
    last_change_day: Optional[int]
    """Days since 1970-01-01 of the last password change (empty: unknown)."""
    expire_day: Optional[int]
    """Days since 1970-01-01 when the account expires (empty: never)."""


def _int(text: str) -> Optional[int]:
    return int(text) if _NUMBER.match(text) else None


def parse_passwd(text: str) -> Tuple[List[PasswdEntry], int]:
    entries: List[PasswdEntry] = []
    bad = 0
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(":")
        uid, gid = (_int(parts[2]), _int(parts[3])) if len(parts) == 7 else (None, None)
        if len(parts) != 7 or uid is None or gid is None or not parts[0]:
            bad += 1
            continue
        entries.append(PasswdEntry(parts[0], parts[1], uid, gid, parts[5], parts[6]))
    return entries, bad


def parse_shadow(text: str) -> Tuple[Dict[str, ShadowEntry], int]:
    entries: Dict[str, ShadowEntry] = {}
    bad = 0
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) < 8 or not parts[0]:
            bad += 1
            continue
        entries.setdefault(parts[0], ShadowEntry(parts[0], parts[1], _int(parts[2]), _int(parts[7])))
    return entries, bad


def parse_group(text: str) -> Tuple[Dict[str, Tuple[int, List[str]]], int]:
    """Group name -> (gid, members)."""
    groups: Dict[str, Tuple[int, List[str]]] = {}
    bad = 0
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(":")
        gid = _int(parts[2]) if len(parts) == 4 else None
        if gid is None or not parts[0]:
            bad += 1
            continue
        groups.setdefault(parts[0], (gid, [m for m in parts[3].split(",") if m]))
    return groups, bad


def uid_min(login_defs: str) -> Optional[int]:
    """``UID_MIN`` of login.defs(5), None when not set."""
    for line in login_defs.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "UID_MIN":
            return _int(parts[1])
    return None


def password_state(passwd_field: str, shadow: Optional[ShadowEntry], shadow_read: bool) -> Optional[str]:
    """``hash``, ``empty`` (no password needed), ``locked`` (``!`` before it), ``disabled``
    (``*``, ``!!`` or another non-hash: no password can match), ``missing`` (``x`` in passwd but
    no shadow entry); None when the hash lives in shadow and shadow could not be read."""
    value = passwd_field
    if passwd_field == "x":  # noqa: S105  the shadow marker, not a password
        if shadow is None:
            return "missing" if shadow_read else None
        value = shadow.password
    if value == "":
        return "empty"
    if value.startswith("!"):
        return "locked"
    if value.startswith("$") or (len(value) == 13 and value.isalnum()):  # crypt(5) or old DES
        return "hash"
    return "disabled"
