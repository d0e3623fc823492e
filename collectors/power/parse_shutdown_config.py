"""Pure parsers for the shutdown clients' configuration: NUT upsmon/nut.conf and apcupsd.

Sources: upsmon.conf(5) (``MONITOR <system> <powervalue> <username> <password>
<primary|secondary|master|slave>``), nut.conf(5) (``MODE=none|standalone|netserver|
netclient``), apcupsd.conf(5) (``DIRECTIVE value``), and Debian's
/etc/default/apcupsd (``ISCONFIGURED=yes|no``).  Passwords are never kept.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Tuple

NUT_DEFAULT_PORT = 3493


@dataclass
class Monitor:
    """One upsmon MONITOR line without its credentials."""

    system: str
    ups: str
    host: str
    port: int
    power_value: Optional[int]
    role: Optional[str]

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass
class UpsmonConfig:
    monitors: List[Monitor] = field(default_factory=list)
    shutdown_cmd: Optional[str] = None
    min_supplies: Optional[int] = None


def _words(line: str) -> List[str]:
    # Most of a shipped upsmon.conf is comments: skip them before shlex (a comment or blank line
    # gives no words either way; " \t\r\n" is shlex's whitespace).
    bare = line.lstrip(" \t\r\n")
    if not bare or bare.startswith("#"):
        return []
    try:
        return shlex.split(line, comments=True)
    except ValueError:  # an unbalanced quote: fall back to plain words
        return line.split("#", 1)[0].split()


def split_system(system: str) -> Tuple[str, str, int]:
    """``ups@host:port`` -> (ups, host, port); host defaults to localhost (upsmon.conf(5))."""
    ups, _, rest = system.partition("@")
    host, port = rest or "localhost", NUT_DEFAULT_PORT
    if rest.startswith("["):  # [IPv6]:port
        inner, _, tail = rest[1:].partition("]")
        host = inner
        if tail.startswith(":") and tail[1:].isdigit():
            port = int(tail[1:])
    elif rest.count(":") == 1:
        name, _, number = rest.partition(":")
        if number.isdigit():
            host, port = name, int(number)
    return ups, host, port


def parse_upsmon_conf(text: str) -> UpsmonConfig:
    config = UpsmonConfig()
    for line in text.splitlines():
        words = _words(line)
        if not words:
            continue
        keyword = words[0].upper()
        if keyword == "MONITOR" and len(words) >= 2:
            ups, host, port = split_system(words[1])
            power = int(words[2]) if len(words) > 2 and words[2].isdigit() else None
            role = words[5].lower() if len(words) > 5 else None
            config.monitors.append(Monitor(words[1], ups, host, port, power, role))
        elif keyword == "SHUTDOWNCMD" and len(words) >= 2:
            config.shutdown_cmd = words[1]
        elif keyword == "MINSUPPLIES" and len(words) >= 2 and words[1].isdigit():
            config.min_supplies = int(words[1])
    return config


def parse_shell_assignments(text: str) -> Dict[str, str]:
    """``KEY=value`` lines of nut.conf or /etc/default/apcupsd (quotes removed)."""
    result: Dict[str, str] = {}
    for line in text.splitlines():
        words = _words(line)
        if len(words) == 1 and "=" in words[0]:
            key, _, value = words[0].partition("=")
            result[key.strip()] = value.strip()
    return result


def parse_apcupsd_conf(text: str) -> Dict[str, str]:
    """apcupsd.conf directives -> {DIRECTIVE: value} (first word upper-cased)."""
    result: Dict[str, str] = {}
    for line in text.splitlines():
        words = _words(line)
        if words:
            result[words[0].upper()] = " ".join(words[1:])
    return result
