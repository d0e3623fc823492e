"""Reduce ``psutil.net_connections(kind="inet")`` entries to listening/bound sockets.

Pure: takes the entries (psutil ``sconn`` tuples or anything with the same
attributes), so captured output can drive the tests.  TCP counts when its state
is LISTEN; UDP when it has no remote address (a connected UDP socket is a client).
Same shape in psutil 5.9.4 and 7.x: ``sconn(fd, family, type, laddr, raddr, status, pid)``.
"""

from __future__ import annotations

import socket
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from collectors.ports.exposure import parse_address
from collectors.ports.model import BoundSocket, Listener

_FAMILIES = {int(socket.AF_INET): "ipv4", int(socket.AF_INET6): "ipv6"}
_TYPES = {int(socket.SOCK_STREAM): "tcp", int(socket.SOCK_DGRAM): "udp"}


def _pair(value: Any) -> Tuple[str, int]:
    """``laddr`` is psutil's ``addr(ip, port)`` namedtuple (a plain 2-tuple in captures)."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"address is not (ip, port): {value!r}")
    ip, port = value
    if not isinstance(ip, str) or isinstance(port, bool) or not isinstance(port, int):
        raise ValueError(f"address is not (ip, port): {value!r}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range: {port}")
    parse_address(ip)  # raises ValueError when it is not an address
    return ip, port


def bound_socket(entry: Any) -> Optional[BoundSocket]:
    """The listening/bound socket of one entry, ``None`` for other states.

    Raises ``ValueError`` for an entry that does not have the psutil shape.
    """
    try:
        family = _FAMILIES.get(int(entry.family))
        protocol = _TYPES.get(int(entry.type))
        status, raddr, pid = entry.status, entry.raddr, entry.pid
    except (AttributeError, TypeError, ValueError) as err:
        raise ValueError(f"not a psutil connection entry: {err}") from err
    if family is None or protocol is None:
        return None
    if protocol == "tcp" and status != "LISTEN":  # psutil.CONN_LISTEN
        return None
    if protocol == "udp" and raddr:
        return None
    ip, port = _pair(entry.laddr)
    if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int)):
        raise ValueError(f"pid is not an integer: {pid!r}")
    return BoundSocket(protocol, family, ip, port, pid)


def listeners(entries: Iterable[Any]) -> Tuple[List[Listener], List[str]]:
    """Group bound sockets by (protocol, address, port), with every owning pid.

    psutil lists a socket once per process holding it (a forked server's parent and
    workers share one listening socket), so identical (protocol, address, port, pid)
    entries collapse and the pids of one address are gathered.  The second value
    lists a line per entry that could not be read.
    """
    pids: Dict[Tuple[str, str, str, int], Set[int]] = {}
    problems: List[str] = []
    for entry in entries:
        try:
            found = bound_socket(entry)
        except ValueError as err:
            problems.append(str(err))
            continue
        if found is None:
            continue
        key = (found.protocol, found.family, found.address, found.port)
        owners = pids.setdefault(key, set())
        if found.pid is not None:
            owners.add(found.pid)
    result = [Listener(p, f, a, port, tuple(sorted(owners))) for (p, f, a, port), owners in pids.items()]
    result.sort(key=lambda s: (s.protocol, s.port, s.family, s.address))
    return result, problems
