"""Read the account databases, sudoers, login records and authorized_keys through the Context.

Every file that cannot be read becomes a gap naming it and why (not root: /etc/shadow, sudoers
and other people's home directories are closed), and the facts that depended on it are null,
so a rule reading them is unknown, never passing.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Set, Tuple

from collectors.accounts import parse_keys, parse_logins, parse_passwd
from collectors.accounts.parse_sudoers import no_password, parse_sudoers
from collectors.accounts.report import Inputs, assemble, login_shell
from collectors.base import Context, describe_os_error
from evidence.model import Gap, Outcome

MAX_FILE = 4 * 1024 * 1024
MAX_SUDOERS_FILES = 200
DEFAULT_UID_MIN = 1000  # Debian's and RHEL's login.defs


def _read(ctx: Context, path: str, gaps: List[Gap], what: str) -> Optional[str]:
    try:
        return ctx.read_text(path, MAX_FILE)
    except OSError as err:
        gaps.append(Gap(what, describe_os_error(err, path)))
        return None


def _sudoers(ctx: Context, main: str, gaps: List[Gap]) -> List[Optional[Dict[str, Any]]]:
    """Rules of ``main`` and of everything it includes, in sudo's order (includedir: sorted, skipping
    names that end in ``~`` or contain a ``.``, as sudoers(5) says)."""
    rules: List[Optional[Dict[str, Any]]] = []
    aliases: Dict[str, Dict[str, List[str]]] = {}
    authenticate: List[Tuple[str, bool, str]] = []
    queue = [main]
    seen: Set[str] = set()
    while queue and len(seen) < MAX_SUDOERS_FILES:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        try:
            text = ctx.read_text(path, MAX_FILE)
        except FileNotFoundError:
            if path == main:  # sudo is not installed: nobody has sudo rules
                continue
            gaps.append(Gap(f"sudo rules in {path}", f"{path}, included by sudoers, does not exist"))
            continue
        except OSError as err:
            gaps.append(Gap(f"sudo rules in {path}", describe_os_error(err, path)))
            rules.append(None)
            continue
        parsed = parse_sudoers(text, path, aliases)
        rules.extend(parsed.rules)
        authenticate += parsed.authenticate
        gaps.extend(Gap(f"line of {path}", p) for p in parsed.problems[:5])
        found: List[str] = []
        for kind, target in parsed.includes:
            absolute = target if target.startswith("/") else os.path.join(os.path.dirname(path), target)
            if kind == "include":
                found.append(absolute)
                continue
            try:
                names = sorted(os.listdir(ctx.path(absolute)))
            except OSError as err:
                if not isinstance(err, FileNotFoundError):  # a missing includedir is no error for sudo
                    gaps.append(Gap(f"sudo rules in {absolute}", describe_os_error(err, absolute)))
                    rules.append(None)
                continue
            found += [f"{absolute}/{n}" for n in names if not n.endswith("~") and "." not in n]
        queue = found + queue
    no_password([r for r in rules if r is not None], authenticate)
    return rules


def _last_logins(ctx: Context, uids: Mapping[str, int], gaps: List[Gap]) -> Tuple[Dict[str, Any], bool, bool]:
    settings = ctx.settings
    latest: Dict[str, Any] = {}
    lastlog_read = wtmp_read = False
    path = str(settings["lastlog"])
    try:
        with open(ctx.path(path), "rb") as handle:
            for user, uid in uids.items():
                handle.seek(uid * parse_logins.LASTLOG_SIZE)
                moment = parse_logins.lastlog_time(handle.read(parse_logins.LASTLOG_SIZE))
                if moment is not None:
                    latest[user] = moment
        lastlog_read = True
    except OSError as err:
        gaps.append(Gap("last logins (lastlog)", describe_os_error(err, path)))
    path = str(settings["wtmp"])
    try:
        with open(ctx.path(path), "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - int(settings["wtmp_max_bytes"])))
            data = handle.read()
        wtmp_read = True
        found, _damaged = parse_logins.wtmp_last_logins(data)
        for user, moment in found.items():
            if user in uids and (user not in latest or moment > latest[user]):
                latest[user] = moment
    except OSError as err:
        gaps.append(Gap("last logins (wtmp)", describe_os_error(err, path)))
    if not lastlog_read and not wtmp_read:
        gaps.append(Gap("dormant accounts", "neither lastlog nor wtmp could be read: last logins unknown"))
    return latest, lastlog_read, wtmp_read


def _keys(ctx: Context, home: str, gaps: List[Gap], user: str) -> Optional[Dict[str, Any]]:
    keys: List[Dict[str, Any]] = []
    for name in ctx.settings["authorized_keys"]:
        path = os.path.join(home, str(name))
        try:
            text = ctx.read_text(path, MAX_FILE)
        except FileNotFoundError:
            continue
        except OSError as err:
            gaps.append(Gap(f"authorized keys of {user}", describe_os_error(err, path)))
            return None
        found, bad = parse_keys.parse_authorized_keys(text)
        keys += found
        if bad:
            gaps.append(Gap(f"authorized keys of {user}", f"{bad} lines of {path} are not keys"))
    return parse_keys.summarise(keys)


def collect(ctx: Context) -> Outcome:
    gaps: List[Gap] = []
    passwd_text = _read(ctx, "/etc/passwd", gaps, "accounts")
    if passwd_text is None:
        return Outcome.failed(gaps[0].reason)
    passwd, bad = parse_passwd.parse_passwd(passwd_text)
    if bad:
        gaps.append(Gap("lines of /etc/passwd", f"{bad} lines are not name:pw:uid:gid:gecos:home:shell"))
    shadow_text = _read(ctx, "/etc/shadow", gaps, "password state and expiry")
    shadow = parse_passwd.parse_shadow(shadow_text)[0] if shadow_text is not None else None
    group_text = _read(ctx, "/etc/group", gaps, "group memberships")
    groups = parse_passwd.parse_group(group_text)[0] if group_text is not None else None
    try:
        uid_min = parse_passwd.uid_min(ctx.read_text("/etc/login.defs", MAX_FILE)) or DEFAULT_UID_MIN
    except OSError:
        uid_min = DEFAULT_UID_MIN
    listed = [e for e in passwd if login_shell(e.shell) or e.uid == 0]
    last, lastlog_read, wtmp_read = _last_logins(ctx, {e.user: e.uid for e in listed}, gaps)
    keys = {e.user: _keys(ctx, e.home, gaps, e.user) for e in listed if e.home.startswith("/")}
    inputs = Inputs(
        passwd=passwd,
        shadow=shadow,
        groups=groups,
        uid_min=uid_min,
        sudo_rules=_sudoers(ctx, str(ctx.settings["sudoers"]), gaps),
        keys=keys,
        last_login=last,
        lastlog_read=lastlog_read,
        wtmp_read=wtmp_read,
        now=ctx.now(),
        dormant_days=int(ctx.settings["dormant_days"]),
        admin_groups=[str(g) for g in ctx.settings["admin_groups"]],
    )
    return Outcome.from_parts(assemble(inputs), gaps)


def summary(observed: Mapping[str, Any]) -> str:
    accounts = observed.get("accounts")
    if not isinstance(accounts, list):
        return ""
    uid0 = [a for a in accounts if isinstance(a, Mapping) and a.get("uid") == 0]
    empty = sum(1 for a in accounts if isinstance(a, Mapping) and a.get("password") == "empty")
    dormant = sum(1 for a in accounts if isinstance(a, Mapping) and a.get("dormant"))
    rules = [r for r in observed.get("sudo_rules") or [] if isinstance(r, Mapping)]
    nopasswd = sum(1 for r in rules if r.get("nopasswd"))
    return (
        f"{observed.get('login_accounts', 0)} login accounts, {len(uid0)} with uid 0, {empty} empty passwords,"
        f" {dormant} dormant, {len(rules)} sudo rules ({nopasswd} NOPASSWD)"
    )
