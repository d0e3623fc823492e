"""The pure part of service_access: when a vendor account is locked, which sockets and processes
are entrances; random input never raises."""

from __future__ import annotations

from datetime import date
from typing import Any, Dict, Optional, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.accounts.parse_passwd import parse_passwd, parse_shadow
from collectors.ports.model import Listener
from collectors.service_access.parse_entrances import (
    account_record,
    listener_entrances,
    process_entrances,
    vendor_ports,
)

TODAY = date(2026, 12, 7)  # day 20794 since 1970-01-01
PASSWD = "vendor:x:1001:1001:Vendor:/home/vendor:/bin/bash\n"
HASH = "$y$j9T$abcdefghijklmnopqrstu.$ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg"


def _record(shadow_line: Optional[str], keys: Optional[int] = 0) -> Dict[str, Any]:
    entries, _ = parse_passwd(PASSWD)
    shadow = parse_shadow(shadow_line)[0] if shadow_line is not None else {}
    return account_record("vendor", entries[0], shadow.get("vendor"), shadow_line is not None, keys, TODAY)


@pytest.mark.parametrize(
    ("shadow", "keys", "locked", "reason"),
    [
        (f"vendor:{HASH}:20000:0:99999:7:::", 0, False, "a password can log in"),
        ("vendor::20000:0:99999:7:::", 0, False, "no password is needed"),
        (f"vendor:!{HASH}:20000:0:99999:7:::", 2, False, "password locked, but 2 SSH keys can log in"),
        (f"vendor:!{HASH}:20000:0:99999:7:::", 0, True, "password locked and no authorized SSH key"),
        ("vendor:*:20000:0:99999:7:::", 0, True, "password disabled and no authorized SSH key"),
        (f"vendor:!{HASH}:20000:0:99999:7::1:", 2, True, "expired since 1970-01-02"),  # usermod -L -e 1
        (f"vendor:{HASH}:20000:0:99999:7::20794:", 0, True, "expired since 2026-12-07"),  # expires today
        (f"vendor:{HASH}:20000:0:99999:7::20795:", 0, False, "a password can log in"),  # tomorrow
        (f"vendor:{HASH}:20000:0:99999:7::0:", 0, False, "a password can log in"),  # 0 is ambiguous
        (None, 0, None, "the shadow file could not be read"),
        (
            f"vendor:!{HASH}:20000:0:99999:7:::",
            None,
            None,
            "password locked, but its authorized_keys could not be read",
        ),
    ],
)
def test_when_an_account_is_locked(shadow: Optional[str], keys: Optional[int], locked: Any, reason: str) -> None:
    record = _record(shadow, keys)
    assert (record["locked"], record["reason"]) == (locked, reason)


def test_an_absent_account_is_locked() -> None:
    record = account_record("hpsupport", None, None, True, 0, TODAY)
    assert (record["present"], record["locked"], record["reason"]) == (False, True, "no such account")


def test_entrances_by_port_by_name_and_vendor_port() -> None:
    found = [
        Listener("tcp", "ipv4", "0.0.0.0", 5901, (10,)),  # VNC display :1 by port
        Listener("tcp", "ipv4", "127.0.0.1", 5902, (11,)),  # loopback: reached only through SSH
        Listener("tcp", "ipv6", "::", 5910, (12,)),  # x11vnc by name on an unusual port
        Listener("tcp", "ipv4", "0.0.0.0", 2222, (13,)),  # a vendor's sshd (vendor_ports)
        Listener("tcp", "ipv4", "0.0.0.0", 443, (14,)),  # nginx: not an entrance
        Listener("udp", "ipv4", "0.0.0.0", 40000, ()),  # owner unknown: undecided
    ]
    names: Dict[int, Tuple[Optional[str], Optional[str]]] = {10: ("Xtigervnc", None), 11: ("x11vnc", None)}
    names.update({12: ("x11vnc", None), 13: ("sshd", None), 14: ("nginx", "/usr/sbin/nginx")})
    extra = vendor_ports([{"port": 2222, "protocol": "tcp", "service": "vendor-ssh"}])
    got = {(e["port"], e["service"], e["remote_service"]) for e in listener_entrances(found, names, extra)}
    assert got == {(5901, "vnc", True), (5910, "vnc", True), (2222, "vendor-ssh", True), (40000, None, None)}


def test_relay_tools_running_are_entrances_once() -> None:
    processes = [(100, "teamviewerd"), (101, "bash"), (102, "AnyDesk"), (103, "splashtop"), (104, "anydesk")]
    got = process_entrances(processes, ["splashtop"], listening_pids=[104])
    assert [(e["pid"], e["service"]) for e in got] == [(100, "teamviewer"), (102, "anydesk"), (103, "splashtop")]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.text(max_size=200), st.one_of(st.none(), st.integers(0, 5)))
def test_random_account_files_never_raise(passwd: str, shadow: str, keys: Optional[int]) -> None:
    entries, _ = parse_passwd(passwd)
    shadows, _ = parse_shadow(shadow)
    for entry in entries[:3]:
        record = account_record(entry.user, entry, shadows.get(entry.user), True, keys, TODAY)
        assert record["locked"] in (True, False, None) and isinstance(record["reason"], str)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["tcp", "udp"]),
            st.sampled_from(["0.0.0.0", "::", "127.0.0.1", "10.1.2.3", "::1"]),
            st.integers(0, 65535),
            st.one_of(st.none(), st.text(max_size=12)),
        ),
        max_size=8,
    )
)
def test_random_socket_tables_never_raise(rows: Any) -> None:
    found = [Listener(p, "ipv6" if ":" in a else "ipv4", a, port, (i,)) for i, (p, a, port, _) in enumerate(rows)]
    names = {i: (name, None) for i, (_, _, _, name) in enumerate(rows)}
    for entry in listener_entrances(found, names, []):
        assert entry["remote_service"] in (True, None)
