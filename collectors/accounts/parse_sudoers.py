"""Parse sudoers(5): who may run what as root, and which files it includes.

Pure.  Follows what sudo reads: ``@include``/``#include`` and ``@includedir``/``#includedir``
(the caller reads those files), line continuations, ``User_Alias`` and ``Cmnd_Alias`` (one level),
of ``Defaults`` lines only ``authenticate`` is read (``Defaults:anna !authenticate`` turns the
password off like ``NOPASSWD:``).  Each user or group a rule names becomes one record with whether
it grants every command (``ALL``) and whether it needs no password.  A line that
cannot be read is a problem with its place, never an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

_INCLUDE = re.compile(r"^[@#](include|includedir)\s+(.+?)\s*$")
_ALIAS = re.compile(r"^(User_Alias|Runas_Alias|Host_Alias|Cmnd_Alias|Cmd_Alias)\s+(.*)$")
_TAG = re.compile(r"\b[A-Z_]+:")
_RUNAS = re.compile(r"\([^)]*\)")
_ALIAS_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_DEFAULTS = re.compile(r"^Defaults(?:([:@>!])\s*(\S+))?\s+(.*)$")


@dataclass
class Sudoers:
    rules: List[Dict[str, Any]] = field(default_factory=list)
    includes: List[Tuple[str, str]] = field(default_factory=list)
    """(``include`` or ``includedir``, path as written)."""
    problems: List[str] = field(default_factory=list)
    authenticate: List[Tuple[str, bool, str]] = field(default_factory=list)
    """``Defaults`` setting ``authenticate``, in order: (who: ``""`` for everyone, a user, or
    ``%group``; on or off; ``file:line``).  Host, runas and command bindings count as everyone."""


def _logical_lines(text: str) -> List[Tuple[int, str]]:
    lines: List[Tuple[int, str]] = []
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not buffer:
            start = number
        if raw.endswith("\\"):
            buffer += raw[:-1] + " "
            continue
        lines.append((start, buffer + raw))
        buffer = ""
    if buffer:
        lines.append((start, buffer))
    return lines


def _strip_comment(line: str) -> str:
    # '#' starts a comment, except "#123" (a uid) right after a separator
    for match in re.finditer(r"#", line):
        index = match.start()
        if index + 1 < len(line) and line[index + 1].isdigit() and (index == 0 or line[index - 1] in " \t,(=:!"):
            continue
        return line[:index]
    return line


def parse_sudoers(text: str, name: str, aliases: Optional[Dict[str, Dict[str, List[str]]]] = None) -> Sudoers:
    """Rules and includes of one file; ``aliases`` carries aliases across included files."""
    result = Sudoers()
    known = aliases if aliases is not None else {}
    for number, raw in _logical_lines(text):
        where = f"{name}:{number}"
        stripped = raw.strip()
        include = _INCLUDE.match(stripped)
        if include:
            result.includes.append((include.group(1), include.group(2).strip('"')))
            continue
        line = _strip_comment(stripped).strip()
        if line.startswith("Defaults"):
            _defaults(line, where, result, known.get("User_Alias", {}))
            continue
        if not line:
            continue
        alias = _ALIAS.match(line)
        if alias:
            _aliases(alias.group(1), alias.group(2), known)
            continue
        rule = _user_spec(line, where, known)
        if isinstance(rule, str):
            result.problems.append(f"{where}: {rule}")
        else:
            result.rules.extend(rule)
    return result


def _defaults(line: str, where: str, result: Sudoers, user_aliases: Dict[str, List[str]]) -> None:
    """Record ``authenticate`` / ``!authenticate`` of a Defaults line (sudoers(5), "Defaults");
    a ``User_Alias`` is expanded, ``ALL`` is everyone."""
    match = _DEFAULTS.match(line)
    if not match:
        return
    binding, names, params = match.groups()
    for param in (p.strip() for p in params.split(",")):
        if param.lstrip("!").strip() != "authenticate":
            continue
        on = not param.startswith("!")
        for who in names.split(",") if binding == ":" and names else [""]:
            for member in user_aliases.get(who, [who]) if _ALIAS_NAME.match(who) and who != "ALL" else [who]:
                result.authenticate.append(("" if member == "ALL" else member, on, where))


def no_password(rules: List[Dict[str, Any]], settings: List[Tuple[str, bool, str]]) -> None:
    """Mark the rules that ``Defaults !authenticate`` lets run without a password, in place: the
    last setting for the rule's user or group, else the last for everyone; a ``PASSWD:`` or
    ``NOPASSWD:`` tag of the rule itself wins over it."""
    last: Dict[str, Tuple[bool, str]] = {}
    for who, on, where in settings:
        last[who] = (on, where)
    for rule in rules:
        key = rule.get("user") or ("%" + rule["group"] if rule.get("group") else "")
        on, where = last.get(key) or last.get("", (True, ""))
        if not on and rule.get("tag") is None:
            rule.update(nopasswd=True, nopasswd_by=f"{where} (Defaults !authenticate)")


def _aliases(kind: str, body: str, known: Dict[str, Dict[str, List[str]]]) -> None:
    table = known.setdefault("Cmnd_Alias" if kind == "Cmd_Alias" else kind, {})
    for part in body.split(":"):
        alias, sep, members = part.partition("=")
        if sep:
            table[alias.strip()] = [m.strip() for m in members.split(",") if m.strip()]


def _user_spec(line: str, where: str, known: Dict[str, Dict[str, List[str]]]) -> Any:
    left, sep, right = line.partition("=")
    if not sep:
        return "not a sudoers rule (no '=')"
    who_hosts = re.sub(r"\s*,\s*", ",", left.strip()).split()
    if len(who_hosts) != 2:
        return "not a sudoers rule (expected 'users hosts = commands')"
    commands_text = _RUNAS.sub(" ", right)
    tags = set(t.rstrip(":") for t in _TAG.findall(commands_text))
    commands = [c.strip() for c in _TAG.sub(" ", commands_text).replace(":", ",").split(",") if c.strip()]
    cmnd_aliases = known.get("Cmnd_Alias", {})
    expanded = [m for c in commands for m in (cmnd_aliases.get(c, [c]) if _ALIAS_NAME.match(c) else [c])]
    runas = _RUNAS.findall(right)
    base = {
        "source": where,
        "runas": runas[0].strip("()").strip() if runas else "root",
        "all_commands": any(c.lstrip("!") == "ALL" and not c.startswith("!") for c in expanded),
        "nopasswd": "NOPASSWD" in tags,
        "tag": "NOPASSWD" if "NOPASSWD" in tags else "PASSWD" if "PASSWD" in tags else None,
        "nopasswd_by": None,
    }
    records: List[Dict[str, Any]] = []
    user_aliases = known.get("User_Alias", {})
    for principal in who_hosts[0].split(","):
        members = user_aliases.get(principal, [principal]) if _ALIAS_NAME.match(principal) else [principal]
        for member in members:
            records.append({**base, **_principal(member)})
    return records


def _principal(text: str) -> Dict[str, Optional[str]]:
    """``%group``/``%:group`` a group, ``#uid`` a uid, ``+netgroup``, else a user (``ALL``: anyone)."""
    if text.startswith("%"):
        return {"user": None, "group": text.lstrip("%:"), "kind": "group"}
    if text.startswith("#"):
        return {"user": None, "group": None, "kind": "uid", "uid": text[1:]}
    if text.startswith("+"):
        return {"user": None, "group": text[1:], "kind": "netgroup"}
    if text == "ALL":
        return {"user": None, "group": None, "kind": "all"}
    return {"user": text, "group": None, "kind": "user"}
