"""Observed facts from an effective configuration (``sshd -T`` keywords, or the parsed files).

Pure.  Where the files do not set a keyword, OpenSSH 9.2's default is taken (sshd_config(5))
and said: ``defaults_assumed`` lists those keywords, because another OpenSSH version may differ.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from collectors.sshd.crypto import DEFAULTS, resolve_list

# sshd_config(5) defaults of OpenSSH 9.2 (Debian 12) for the keywords reported.
DEFAULT_VALUES = {
    "passwordauthentication": "yes",
    "kbdinteractiveauthentication": "yes",
    "permitrootlogin": "prohibit-password",
    "permitemptypasswords": "no",
    "pubkeyauthentication": "yes",
    "authenticationmethods": "any",
    "usepam": "no",
    "port": "22",
}
_DIGITS = re.compile(r"^[0-9]{1,5}$")  # str.isdigit() also takes "²", which int() refuses
ROOT_LOGIN = {"without-password": "prohibit-password"}
"""sshd -T of OpenSSH 9.2 still prints the old name of the default."""
AUTH_KEYS = (
    ("password_authentication", "passwordauthentication"),
    ("kbd_interactive_authentication", "kbdinteractiveauthentication"),
    ("permit_empty_passwords", "permitemptypasswords"),
    ("pubkey_authentication", "pubkeyauthentication"),
    ("use_pam", "usepam"),
)


def _flag(text: Optional[str]) -> Optional[bool]:
    lowered = (text or "").strip().lower()
    return {"yes": True, "no": False}.get(lowered)


def _first(values: Mapping[str, Sequence[str]], keyword: str, assumed: List[str], fill: bool) -> Optional[str]:
    found = values.get(keyword)
    if found:
        return found[0]
    if fill and keyword in DEFAULT_VALUES:
        assumed.append(keyword)
        return DEFAULT_VALUES[keyword]
    return None


def authentication(values: Mapping[str, Sequence[str]], assumed: List[str], fill: bool) -> Dict[str, Any]:
    """Password, keyboard-interactive, root and empty-password facts of one context."""
    facts: Dict[str, Any] = {}
    for name, keyword in AUTH_KEYS:
        facts[name] = _flag(_first(values, keyword, assumed, fill))
    root = _first(values, "permitrootlogin", assumed, fill)
    facts["permit_root_login"] = ROOT_LOGIN.get(root.lower(), root.lower()) if root else None
    facts["authentication_methods"] = _first(values, "authenticationmethods", assumed, fill)
    facts["password_login_possible"] = _password_possible(facts)
    return facts


def _password_possible(facts: Mapping[str, Any]) -> Optional[bool]:
    """Whether a password can be typed at all: PasswordAuthentication, or keyboard-interactive
    (which asks for the password through PAM when UsePAM is on)."""
    methods = facts.get("authentication_methods")
    if methods and methods != "any" and "password" not in methods and "keyboard-interactive" not in methods:
        return False
    pw, kbd = facts.get("password_authentication"), facts.get("kbd_interactive_authentication")
    if pw is True or kbd is True:
        return True
    if pw is False and kbd is False:
        return False
    return None


def algorithms(values: Mapping[str, Sequence[str]], fill: bool, assumed: List[str]) -> Dict[str, List[str]]:
    offered: Dict[str, List[str]] = {}
    for keyword in DEFAULTS:
        found = values.get(keyword)
        if found:
            offered[keyword] = resolve_list(keyword, found[0]) if fill else [n for n in found[0].split(",") if n]
        elif fill:
            assumed.append(keyword)
            offered[keyword] = list(DEFAULTS[keyword])
    return offered


def listen(values: Mapping[str, Sequence[str]], fill: bool) -> List[Dict[str, Any]]:
    """``ListenAddress`` entries as ``{address, port}``; with none, every address on each Port."""
    ports = [p for p in values.get("port", []) if _DIGITS.match(p)] or (["22"] if fill else [])
    entries: List[Dict[str, Any]] = []
    for raw in values.get("listenaddress", []):
        text = raw.split()[0] if raw.split() else raw
        address, port = _split_address(text)
        for one in [port] if port is not None else [int(p) for p in ports]:
            entries.append({"address": address, "port": one})
    if not values.get("listenaddress") and fill:
        entries = [{"address": a, "port": int(p)} for p in ports for a in ("0.0.0.0", "::")]  # noqa: S104  what sshd binds, not us
    return entries


def _split_address(text: str) -> Tuple[str, Optional[int]]:
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host, int(port) if _DIGITS.match(port) else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port) if _DIGITS.match(port) else None
    return text, None


def principals(values: Mapping[str, Sequence[str]]) -> Dict[str, Any]:
    """AllowUsers/DenyUsers as ``{user, from}`` (the ``user@host`` form), groups as names."""

    def users(keyword: str) -> Optional[List[Dict[str, Optional[str]]]]:
        if keyword not in values:
            return None
        out: List[Dict[str, Optional[str]]] = []
        for entry in " ".join(values[keyword]).split():
            user, _, host = entry.partition("@")
            out.append({"user": user, "from": host or None})
        return out

    def groups(keyword: str) -> Optional[List[str]]:
        return " ".join(values[keyword]).split() if keyword in values else None

    return {
        "allow_users": users("allowusers"),
        "deny_users": users("denyusers"),
        "allow_groups": groups("allowgroups"),
        "deny_groups": groups("denygroups"),
    }
