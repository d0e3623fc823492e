"""Turn listeners and their owners into the collector's ``observed`` facts and counts.

Pure: the I/O module hands in what it read; everything here is table-testable.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

from collectors.ports.exposure import classify_address
from collectors.ports.model import TAGS, Listener, ProcessInfo, ServicePort
from collectors.ports.services import classify

NOT_ROOT_REASON = "not root: cannot map {n} to processes (cannot read /proc/<pid>/fd of other users)"
NO_OWNER_REASON = (
    "no process holds {n}: kernel sockets (nfsd, lockd, WireGuard), processes in another "
    "PID namespace, or the agent lacks CAP_SYS_PTRACE (needed to read /proc/<pid>/fd of others)"
)


def extra_ports(settings: Sequence[Mapping[str, Any]]) -> List[ServicePort]:
    """The ``extra_ports`` setting as service-table rows."""
    return [
        ServicePort(str(row["service"]), str(row["protocol"]), int(row["port"]), int(row["port"]), (str(row["tag"]),))
        for row in settings
    ]


def _allowed(listener: Listener, allow: Sequence[Mapping[str, Any]]) -> bool:
    return any(int(row["port"]) == listener.port and row["protocol"] in ("any", listener.protocol) for row in allow)


def socket_record(
    listener: Listener,
    owner: Optional[ProcessInfo],
    extra: Sequence[ServicePort] = (),
    allow: Optional[Sequence[Mapping[str, Any]]] = None,
) -> Dict[str, Any]:
    """One entry of ``observed["sockets"]``."""
    exposure = classify_address(listener.address)
    found = classify(
        listener.protocol, listener.port, owner.name if owner else None, owner.exe if owner else None, extra
    )
    tags: List[Optional[str]] = list(found.tags)
    if owner is None or (owner.name is None and owner.exe is None):
        # The owner's name could add tags (vsftpd on 2121, x11vnc on 5910): a null member says some
        # are unknown, so a rule's "tags contains X" is unknown unless the port already gives X.
        tags.append(None)
    record: Dict[str, Any] = {
        "protocol": listener.protocol,
        "family": listener.family,
        "address": listener.address,
        "port": listener.port,
        "exposure": exposure.kind,
        "address_scope": exposure.scope,
        "process": owner.to_dict() if owner else None,
        "other_pids": list(listener.pids[1:]),
        "services": found.services,
        "tags": tags,
    }
    if allow:
        record["allow_listed"] = _allowed(listener, allow)
    return record


def counts(records: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """Totals a table or a rule can read without walking the list."""
    exposed = [r for r in records if r["exposure"] != "loopback"]
    result: Dict[str, Any] = {
        "total": len(records),
        "tcp": sum(1 for r in records if r["protocol"] == "tcp"),
        "udp": sum(1 for r in records if r["protocol"] == "udp"),
        "loopback": len(records) - len(exposed),
        "all_interfaces": sum(1 for r in records if r["exposure"] == "all"),
        "specific_address": sum(1 for r in records if r["exposure"] == "specific"),
        "unmapped": sum(1 for r in records if r["process"] is None),
        "non_loopback_by_tag": {tag: sum(1 for r in exposed if tag in r["tags"]) for tag in TAGS},
    }
    if any("allow_listed" in r for r in records):
        result["non_loopback_not_allow_listed"] = sum(1 for r in exposed if not r.get("allow_listed"))
    return result


def unmapped_reason(count: int, is_root: bool) -> str:
    """Why ``count`` sockets have no owner: privileges when not root, else no process holds them."""
    return (NOT_ROOT_REASON if not is_root else NO_OWNER_REASON).format(n=sockets(count))


def sockets(count: int) -> str:
    """``1 socket``, ``2 sockets``."""
    return f"{count} socket{'' if count == 1 else 's'}"


def entries(count: int) -> str:
    """``1 socket entry``, ``2 socket entries`` (lines of the socket table that could not be read)."""
    return f"{count} socket entr{'y' if count == 1 else 'ies'}"
