"""listeners(): psutil entries reduced to listening TCP / bound UDP sockets, grouped."""

from __future__ import annotations

from types import SimpleNamespace

from collectors.ports.model import Listener
from collectors.ports.parse_sockets import listeners
from tests.collectors.ports.helpers import load_capture


def test_loopback_services_capture_psutil_7() -> None:
    entries, _ = load_capture("psutil-net-connections_debian-12_psutil-7.2.2_loopback-services.json")
    found, problems = listeners(entries)
    assert problems == []
    # 15 entries, of which TIME_WAIT and ESTABLISHED connections are not listeners.
    assert len(entries) == 15
    assert [(s.protocol, s.address, s.port, s.pids) for s in found] == [
        ("tcp", "127.0.0.1", 1883, (2944,)),
        ("tcp", "0.0.0.0", 2024, ()),
        ("tcp", "127.0.0.1", 3306, (3778,)),
        ("tcp", "127.0.0.1", 4222, (2947,)),
        ("tcp", "127.0.0.1", 4369, (2894,)),
        ("tcp", "::1", 4369, (2894,)),
        ("tcp", "127.0.0.1", 5432, (2190,)),
        ("tcp", "127.0.0.1", 5672, (2939,)),
        ("tcp", "127.0.0.1", 6379, (2210,)),
        ("tcp", "::1", 6379, (2210,)),
        ("tcp", "127.0.0.1", 25672, (2939,)),
    ]


def test_wildcard_and_udp_capture_psutil_594() -> None:
    entries, _ = load_capture("psutil-net-connections_debian-12_psutil-5.9.4_wildcard-and-udp.json")
    found, problems = listeners(entries)
    assert problems == []
    mine = [s for s in found if s.port in (47001, 47002) or s.pids == (11968,)]
    # The connected UDP client socket (raddr set) is not a bound listener.
    assert mine == [
        Listener("tcp", "ipv6", "::", 47001, (11968,)),
        Listener("udp", "ipv4", "0.0.0.0", 47002, (11968,)),
    ]


def test_empty_network_namespace() -> None:
    entries, _ = load_capture("psutil-net-connections_debian-12_psutil-7.2.2_empty-netns.json")
    assert listeners(entries) == ([], [])


def test_malformed_entries_are_reported_not_raised() -> None:
    entries, _ = load_capture("psutil-net-connections_malformed.json")
    found, problems = listeners(entries)
    assert [(s.address, s.port) for s in found] == [("127.0.0.1", 22)]
    assert len(problems) == 4
    assert "'not-an-ip' does not appear to be an IPv4 or IPv6 address" in problems[0]
    assert problems[1] == "port out of range: 70000"
    assert problems[2].startswith("address is not (ip, port)")
    assert problems[3] == "pid is not an integer: '100'"
    assert listeners([SimpleNamespace(family=2)])[1] == [
        "not a psutil connection entry: 'types.SimpleNamespace' object has no attribute 'type'"
    ]


def test_duplicates_collapse_and_reuseport_owners_gather() -> None:
    def entry(pid: object) -> SimpleNamespace:
        return SimpleNamespace(family=2, type=1, laddr=("0.0.0.0", 8443), raddr=(), status="LISTEN", pid=pid)

    found, _ = listeners([entry(30), entry(20), entry(30), entry(None)])
    assert found == [Listener("tcp", "ipv4", "0.0.0.0", 8443, (20, 30))]
