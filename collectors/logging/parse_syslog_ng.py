"""Forwarding destinations in syslog-ng's configuration (pure).

syslog-ng's administration guide: a ``destination NAME { driver("host" port(N) transport("tcp")); };``
with a network driver (``network``, ``syslog``, ``tcp``, ``udp``, ``tcp6``, ``udp6``) sends logs to
another host, but only when a ``log { ... destination(NAME); };`` statement uses it; a log
statement may also hold an anonymous ``destination { ... };``.  ``#`` starts a comment outside
quoted strings.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Set, Tuple

_DRIVER = re.compile(r"\b(network|syslog|tcp6?|udp6?)\s*\(\s*(?:\"([^\"]*)\"|'([^']*)'|([A-Za-z0-9_.:\[\]-]+))")
_DEST = re.compile(r"\bdestination\s+([A-Za-z0-9_.-]+)\s*\{")
_LOG = re.compile(r"\blog\s*\{")
_USE = re.compile(r"\bdestination\s*\(\s*([A-Za-z0-9_.-]+)\s*\)")


def strip_comments(text: str) -> str:
    """Remove ``#`` comments that are not inside a quoted string."""
    out = []
    for line in text.splitlines():
        quote, kept = "", line
        for index, char in enumerate(line):
            if quote:
                if char == quote and line[index - 1 : index] != "\\":
                    quote = ""
            elif char in "\"'":
                quote = char
            elif char == "#":
                kept = line[:index]
                break
        out.append(kept)
    return "\n".join(out)


def _block(text: str, start: int) -> Tuple[str, int]:
    """The text inside the braces opening at ``start`` (its ``{``), and the index after them."""
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : index], index + 1
    return text[start + 1 :], len(text)


def _drivers(body: str) -> List[Dict[str, Any]]:
    found = []
    for match in _DRIVER.finditer(body):
        kind, host = match.group(1), match.group(2) or match.group(3) or match.group(4) or ""
        rest, _ = _paren(body, match.start(0) + body[match.start(0) :].index("("))
        transport = re.search(r"transport\s*\(\s*\"?([A-Za-z]+)", rest)
        port = re.search(r"port\s*\(\s*(\d+)", rest)
        protocol = transport.group(1).lower() if transport else ("udp" if kind.startswith("udp") else "tcp")
        if kind in ("syslog", "network") and not transport:
            protocol = "tcp"
        found.append({"host": host, "port": int(port.group(1)) if port else (601 if kind == "syslog" else 514),
                      "protocol": protocol})  # fmt: skip
    return [d for d in found if d["host"]]


def _paren(text: str, start: int) -> Tuple[str, int]:
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "(":
            depth += 1
        elif text[index] == ")":
            depth -= 1
            if depth == 0:
                return text[start + 1 : index], index + 1
    return text[start + 1 :], len(text)


def forwarding_targets(text: str, source: str) -> List[Dict[str, Any]]:
    """Remote destinations, each with ``used``: whether a log statement sends to it."""
    clean = strip_comments(text)
    named: List[Tuple[str, Dict[str, Any], int]] = []
    for match in _DEST.finditer(clean):
        body, _ = _block(clean, match.end() - 1)
        line = clean.count("\n", 0, match.start()) + 1
        for driver in _drivers(body):
            named.append((match.group(1), driver, line))
    used: Set[str] = set()
    anonymous: List[Tuple[Dict[str, Any], int]] = []
    for match in _LOG.finditer(clean):
        body, _ = _block(clean, match.end() - 1)
        used.update(_USE.findall(body))
        line = clean.count("\n", 0, match.start()) + 1
        for inline in re.finditer(r"\bdestination\s*\{", body):
            inner, _ = _block(body, inline.end() - 1)
            anonymous.extend((driver, line) for driver in _drivers(inner))
    targets = [
        {"daemon": "syslog-ng", **driver, "destination": name, "used": name in used, "source": f"{source}:{line}"}
        for name, driver, line in named
    ]
    targets += [
        {"daemon": "syslog-ng", **driver, "destination": None, "used": True, "source": f"{source}:{line}"}
        for driver, line in anonymous
    ]
    return targets
