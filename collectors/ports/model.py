"""Typed records of the ports collector: a bound socket as the kernel lists it, and its owner.

Kept free of I/O so the parsers, the classification and the report can be tested
on crafted or captured values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

TAGS: Tuple[str, ...] = ("plaintext_remote", "remote_service", "database")
"""Every tag a socket can carry, in the order they are reported."""


@dataclass(frozen=True)
class BoundSocket:
    """One listening TCP or bound UDP socket, reduced from ``psutil.net_connections``.

    ``pid`` is ``None`` when no process could be found for the socket (not root,
    a kernel socket, or a process in another PID namespace).
    """

    protocol: str  # "tcp" | "udp"
    family: str  # "ipv4" | "ipv6"
    address: str
    port: int
    pid: Optional[int]


@dataclass(frozen=True)
class Listener:
    """A socket address with every process holding it (forked servers share one socket)."""

    protocol: str
    family: str
    address: str
    port: int
    pids: Tuple[int, ...]
    """Sorted; empty when no owner could be found."""


@dataclass(frozen=True)
class ProcessInfo:
    """The owner of a socket; a field is ``None`` when it could not be read (a gap says why)."""

    pid: int
    name: Optional[str] = None
    exe: Optional[str] = None
    user: Optional[str] = None
    unit: Optional[str] = None
    cgroup: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return {
            "pid": self.pid,
            "name": self.name,
            "exe": self.exe,
            "user": self.user,
            "unit": self.unit,
            "cgroup": self.cgroup,
        }


@dataclass(frozen=True)
class ServicePort:
    """A row of the known-service table (or of the ``extra_ports`` setting)."""

    service: str
    protocol: str  # "tcp" | "udp" | "any"
    first: int
    last: int
    tags: Tuple[str, ...]

    def matches(self, protocol: str, port: int) -> bool:
        return (self.protocol in ("any", protocol)) and self.first <= port <= self.last


@dataclass(frozen=True)
class Classification:
    """Which known services a socket looks like, and the resulting tags (facts, not verdicts)."""

    services: List[str] = field(default_factory=list)
    tags: List[str] = field(default_factory=list)
