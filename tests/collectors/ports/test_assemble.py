"""assemble(): observed facts, counts, gaps and summary from captured psutil output."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import pytest

from collectors.ports import SPEC
from collectors.ports.collect import assemble
from collectors.ports.model import ProcessInfo
from collectors.settings import SettingsError, defaults, validate
from evidence.model import Gap, Status
from tests.collectors.ports.helpers import load_capture

LOOPBACK = "psutil-net-connections_debian-12_psutil-7.2.2_loopback-services.json"


def test_captured_services_as_root() -> None:
    entries, lookup = load_capture(LOOPBACK)
    outcome = assemble(entries, lookup, defaults(SPEC.settings), is_root=True)
    assert outcome.status is Status.PARTIAL
    assert outcome.gaps == [
        Gap(
            "owner of 1 socket",
            "no process holds 1 socket: kernel sockets (nfsd, lockd, WireGuard), processes in another "
            "PID namespace, or the agent lacks CAP_SYS_PTRACE (needed to read /proc/<pid>/fd of others)",
        )
    ]
    sockets = outcome.observed["sockets"]
    mariadb = next(s for s in sockets if s["port"] == 3306)
    assert mariadb == {
        "protocol": "tcp",
        "family": "ipv4",
        "address": "127.0.0.1",
        "port": 3306,
        "exposure": "loopback",
        "address_scope": "loopback",
        "process": {
            "pid": 3778,
            "name": "mariadbd",
            "exe": "/usr/sbin/mariadbd",
            "user": "mysql",
            "unit": None,
            "cgroup": "/",
        },
        "other_pids": [],
        "services": ["mysql"],
        "tags": ["database"],
    }
    wildcard = next(s for s in sockets if s["port"] == 2024)
    # no owner: what its name would add is unknown (a null member), not "no tags"
    assert (wildcard["exposure"], wildcard["process"], wildcard["tags"]) == ("all", None, [None])
    assert outcome.observed["counts"] == {
        "total": 11,
        "tcp": 11,
        "udp": 0,
        "loopback": 10,
        "all_interfaces": 1,
        "specific_address": 0,
        "unmapped": 1,
        "non_loopback_by_tag": {"plaintext_remote": 0, "remote_service": 0, "database": 0},
    }
    assert SPEC.summary(outcome.observed) == (
        "11 sockets, 1 beyond loopback (db 0, plaintext 0, remote-service 0); 1 without owner"
    )


def test_tags_of_sockets_whose_owner_is_not_seen_are_incomplete() -> None:
    """Unprivileged, psutil gives pid None for other users' sockets: the port alone decides only
    the tags it gives itself (telnet 23); vsftpd on 2121 or x11vnc on 5910 could be anything."""
    from types import SimpleNamespace

    def e(ip: str, port: int, pid: Optional[int], family: int = 2) -> SimpleNamespace:
        return SimpleNamespace(family=family, type=1, laddr=(ip, port), raddr=(), status="LISTEN", pid=pid)

    owners = {30: ProcessInfo(30, "sshd", "/usr/sbin/sshd"), 31: ProcessInfo(31)}  # 31 exited while read
    entries = [e("0.0.0.0", 2121, None), e("::", 5910, None, 10), e("0.0.0.0", 23, None), e("0.0.0.0", 22, 30),
               e("0.0.0.0", 2222, 31)]  # fmt: skip
    outcome = assemble(entries, lambda pid: (owners[pid], []), defaults(SPEC.settings), is_root=False)
    tags = {s["port"]: s["tags"] for s in outcome.observed["sockets"]}
    assert tags == {22: [], 23: ["plaintext_remote", "remote_service", None], 2121: [None], 2222: [None], 5910: [None]}
    assert outcome.observed["counts"]["non_loopback_by_tag"] == {
        "plaintext_remote": 1,
        "remote_service": 1,
        "database": 0,
    }


def test_unmapped_as_non_root_says_why() -> None:
    entries, lookup = load_capture(LOOPBACK)
    outcome = assemble(entries, lookup, defaults(SPEC.settings), is_root=False)
    assert outcome.gaps[-1].reason == (
        "not root: cannot map 1 socket to processes (cannot read /proc/<pid>/fd of other users)"
    )


def test_empty_namespace_is_complete_with_zero_counts() -> None:
    entries, lookup = load_capture("psutil-net-connections_debian-12_psutil-7.2.2_empty-netns.json")
    outcome = assemble(entries, lookup, defaults(SPEC.settings), is_root=True)
    assert outcome.status is Status.COMPLETE
    assert outcome.observed["sockets"] == []
    assert outcome.observed["counts"]["total"] == 0
    assert SPEC.summary(outcome.observed) == "0 sockets, 0 beyond loopback (db 0, plaintext 0, remote-service 0)"


def test_malformed_entries_give_a_gap_and_keep_the_rest() -> None:
    entries, lookup = load_capture("psutil-net-connections_malformed.json")
    outcome = assemble(entries, lookup, defaults(SPEC.settings), is_root=True)
    assert outcome.status is Status.PARTIAL
    assert [s["port"] for s in outcome.observed["sockets"]] == [22]
    assert outcome.observed["sockets"][0]["process"]["unit"] == "ssh.service"
    assert outcome.gaps[0].what == "4 socket entries"
    assert outcome.gaps[0].reason.startswith("unreadable: ")


def _public_db_entries() -> Tuple[List[Any], Any]:
    from types import SimpleNamespace

    def e(fam: int, typ: int, ip: str, port: int, pid: int) -> SimpleNamespace:
        return SimpleNamespace(
            family=fam, type=typ, laddr=(ip, port), raddr=(), status="LISTEN" if typ == 1 else "NONE", pid=pid
        )

    owners: Dict[int, ProcessInfo] = {
        10: ProcessInfo(10, "mysqld", "/usr/sbin/mysqld", "mysql", "mysql.service", "/system.slice/mysql.service"),
        11: ProcessInfo(11, "sshd", "/usr/sbin/sshd", "root", "ssh.service", "/system.slice/ssh.service"),
    }
    entries = [
        e(2, 1, "203.0.113.5", 3306, 10),
        e(10, 1, "::", 22, 11),
        e(2, 1, "0.0.0.0", 2222, 11),
        e(2, 2, "10.0.0.4", 623, 11),
    ]
    return entries, lambda pid: (owners[pid], [])


def test_crafted_public_database_and_settings() -> None:
    entries, lookup = _public_db_entries()
    settings = validate(
        {
            "extra_ports": [{"port": 2222, "service": "vendor-ssh"}],
            "allowed_ports": [{"port": 22}, {"port": 3306, "protocol": "tcp"}],
        },
        SPEC.settings,
        "collectors.ports",
    )
    outcome = assemble(entries, lookup, settings, is_root=True)
    assert outcome.status is Status.COMPLETE
    by_port = {s["port"]: s for s in outcome.observed["sockets"]}
    assert by_port[3306]["address_scope"] == "reserved"  # 203.0.113.0/24 is TEST-NET-3
    assert by_port[3306]["tags"] == ["database"]
    assert by_port[3306]["process"]["unit"] == "mysql.service"
    assert by_port[2222]["services"] == ["vendor-ssh"]
    assert by_port[2222]["tags"] == ["remote_service"]
    assert by_port[623]["tags"] == ["remote_service"]
    assert by_port[623]["address_scope"] == "private"
    assert [by_port[p]["allow_listed"] for p in (22, 623, 2222, 3306)] == [True, False, False, True]
    assert outcome.observed["counts"]["non_loopback_by_tag"] == {
        "plaintext_remote": 0,
        "remote_service": 2,
        "database": 1,
    }
    assert outcome.observed["counts"]["non_loopback_not_allow_listed"] == 2


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"extra_port": []}, "collectors.ports.extra_port"),
        ({"extra_ports": [{"port": "22", "service": "x"}]}, "collectors.ports.extra_ports[0].port"),
        ({"extra_ports": [{"port": 22, "service": "x", "tag": "evil"}]}, "collectors.ports.extra_ports[0].tag"),
        ({"allowed_ports": [{"port": 0}]}, "collectors.ports.allowed_ports[0].port"),
        ({"allowed_ports": "22/tcp"}, "collectors.ports.allowed_ports"),
    ],
)
def test_bad_settings_name_the_key(data: Dict[str, Any], key: str) -> None:
    with pytest.raises(SettingsError) as err:
        validate(data, SPEC.settings, "collectors.ports")
    assert err.value.key == key


def test_spec() -> None:
    assert (SPEC.name, SPEC.controls) == ("ports", ("M07", "M11"))
    assert defaults(SPEC.settings) == {"extra_ports": [], "allowed_ports": []}
    assert list(SPEC.watch_paths({})) == []
