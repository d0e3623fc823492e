"""Forwarding rules in rsyslog's configuration (pure).

rsyslog.conf(5) and the rsyslog documentation ("omfwd", "omrelp", "Legacy configuration"):
- legacy action lines: ``*.* @host[:port]`` (UDP), ``*.* @@host[:port]`` (TCP), with optional
  ``(o,z9)`` options after the at signs and ``[v6addr]`` hosts; ``:omrelp:host:port`` (RELP);
- RainerScript actions: ``action(type="omfwd" target="host" port="514" protocol="tcp")`` and
  ``type="omrelp"``, possibly over several lines.
``#`` starts a comment line; ``/* ... */`` comments are removed.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_LEGACY = re.compile(r"(?:^|\s)(@@?)(?:\([^)]*\))?(\[[^\]]+\]|[^\s:;]+)(?::(\d+))?")
_RELP = re.compile(r":omrelp:(\[[^\]]+\]|[^\s:;]+):(\d+)")
_ACTION = re.compile(r"action\s*\((.*?)\)", re.S | re.I)
_PARAM = re.compile(r'([A-Za-z.]+)\s*=\s*"([^"]*)"')


def _host(text: str) -> str:
    return text[1:-1] if text.startswith("[") and text.endswith("]") else text


def forwarding_targets(text: str, source: str) -> List[Dict[str, Any]]:
    """Every remote target the configuration forwards to: host, port, protocol, where it is set."""
    clean = _BLOCK_COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    lines = [("" if line.lstrip().startswith("#") else line) for line in clean.splitlines()]
    targets: List[Dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if "action(" in line.replace(" ", "").lower():
            continue  # RainerScript, below
        relp = _RELP.search(line)
        if relp:
            targets.append(_target(relp.group(1), relp.group(2), "relp", source, number))
            continue
        if line[:1].isspace() or not line.strip() or line.lstrip().startswith(("$", "module(", "input(")):
            continue
        parts = line.split(None, 1)
        if len(parts) == 2:
            legacy = _LEGACY.match(" " + parts[1].strip())
            if legacy:
                protocol = "tcp" if legacy.group(1) == "@@" else "udp"
                targets.append(_target(legacy.group(2), legacy.group(3), protocol, source, number))
    body = "\n".join(lines)
    for match in _ACTION.finditer(body):
        params = {k.lower(): v for k, v in _PARAM.findall(match.group(1))}
        kind = params.get("type", "").lower()
        if kind in ("omfwd", "omrelp") and params.get("target"):
            protocol = "relp" if kind == "omrelp" else params.get("protocol", "udp").lower()
            number = body.count("\n", 0, match.start()) + 1
            targets.append(_target(params["target"], params.get("port"), protocol, source, number))
    return targets


def _target(host: str, port: Optional[str], protocol: str, source: str, line: int) -> Dict[str, Any]:
    default = {"udp": 514, "tcp": 514, "relp": 2514}.get(protocol, 514)
    return {
        "daemon": "rsyslog",
        "host": _host(host),
        "port": int(port) if port and port.isdigit() else default,
        "protocol": protocol,
        "source": f"{source}:{line}",
    }
