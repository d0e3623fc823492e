"""Which sockets and processes are remote-service entrances, and whether a vendor account is locked.

Pure: the I/O module hands in the socket table, the owners' names, the running processes and
the account databases; everything here is table-testable.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from collectors.accounts.parse_passwd import PasswdEntry, ShadowEntry, password_state
from collectors.ports.exposure import classify_address
from collectors.ports.model import Listener, ServicePort
from collectors.ports.services import REMOTE, classify

# Remote-service tools that reach their vendor's relay outward and need no listening port
# (TeamViewer, AnyDesk and RustDesk documentation): running is the open entrance.
RELAY_TOOLS: Dict[str, str] = {
    "teamviewerd": "teamviewer",
    "teamviewer": "teamviewer",
    "anydesk": "anydesk",
    "rustdesk": "rustdesk",
    "dwagent": "dwservice",
    "meshagent": "meshcentral",
}
EPOCH = date(1970, 1, 1)


def vendor_ports(settings: Sequence[Mapping[str, Any]]) -> List[ServicePort]:
    """The ``vendor_ports`` setting as service-table rows with the remote-service tag."""
    return [
        ServicePort(str(r["service"]), str(r["protocol"]), int(r["port"]), int(r["port"]), (REMOTE,)) for r in settings
    ]


def listener_entrances(
    found: Sequence[Listener], names: Mapping[int, Tuple[Optional[str], Optional[str]]], extra: Sequence[ServicePort]
) -> List[Dict[str, Any]]:
    """Sockets beyond loopback that are remote-service entrances (``remote_service`` true), or may be
    (null: the owner is unknown and the port alone does not say)."""
    out: List[Dict[str, Any]] = []
    for listener in found:
        if classify_address(listener.address).kind == "loopback":
            continue
        name, exe = names.get(listener.pids[0], (None, None)) if listener.pids else (None, None)
        seen = classify(listener.protocol, listener.port, name, exe, extra)
        if REMOTE in seen.tags:
            remote: Optional[bool] = True
        elif name is None and exe is None:
            remote = None  # another name might make it one (x11vnc on 5910)
        else:
            continue
        out.append(
            {
                "kind": "listener",
                "service": ", ".join(seen.services) or None,
                "protocol": listener.protocol,
                "address": listener.address,
                "port": listener.port,
                "process": name,
                "pid": listener.pids[0] if listener.pids else None,
                "remote_service": remote,
            }
        )
    return out


def process_entrances(
    processes: Sequence[Tuple[int, str]], extra_names: Sequence[str], listening_pids: Sequence[int]
) -> List[Dict[str, Any]]:
    """Running relay tools (and ``remote_processes``) that hold no listener reported already."""
    wanted = {**RELAY_TOOLS, **{str(n).lower(): str(n) for n in extra_names}}
    out = []
    for pid, name in sorted(processes):
        service = wanted.get(name.lower())
        if service is None or pid in listening_pids:
            continue
        out.append(
            {
                "kind": "process",
                "service": service,
                "protocol": None,
                "address": None,
                "port": None,
                "process": name,
                "pid": pid,
                "remote_service": True,
            }
        )
    return out


def account_record(
    name: str,
    entry: Optional[PasswdEntry],
    shadow: Optional[ShadowEntry],
    shadow_read: bool,
    keys: Optional[int],
    today: date,
) -> Dict[str, Any]:
    """Whether ``name`` can log in: ``locked`` true, false, or null (with ``reason``).

    Locked means: no such account, or it has expired (shadow(5) field 8, as ``usermod -e 1``
    sets; pam_unix and sshd refuse it), or its password is locked or unset **and** it has no
    authorized SSH key. A locked password alone is not enough: passwd(1) warns that the user may
    still log in with an SSH key. A nologin shell is not counted: it still allows port forwarding.
    """
    record: Dict[str, Any] = {"name": name, "present": entry is not None, "password": None, "expired": None}
    record.update(authorized_keys=keys, locked=None, reason="")
    if entry is None:
        record.update(locked=True, reason="no such account")
        return record
    expire = shadow.expire_day if shadow is not None else None
    if shadow is not None:
        record["expired"] = expire is not None and 0 < expire <= (today - EPOCH).days  # 0 is ambiguous: shadow(5)
    state = password_state(entry.password, shadow, shadow_read)
    record["password"] = state
    if record["expired"]:
        assert expire is not None
        record.update(locked=True, reason=f"expired since {EPOCH + timedelta(days=expire)}")
    elif state in ("hash", "empty"):
        record.update(locked=False, reason="a password can log in" if state == "hash" else "no password is needed")
    elif state is None:
        record["reason"] = "the shadow file could not be read"
    elif keys is None:
        record["reason"] = f"password {state}, but its authorized_keys could not be read"
    elif keys:
        record.update(locked=False, reason=f"password {state}, but {keys} SSH key{'' if keys == 1 else 's'} can log in")
    else:
        record.update(locked=True, reason=f"password {state} and no authorized SSH key")
    return record
