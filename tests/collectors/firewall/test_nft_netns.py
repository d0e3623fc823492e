"""The firewall collector against real nftables in a network namespace the test creates.

Each test enters its own namespace (``netns.own_netns``), loads a ruleset with ``nft -f``,
opens real listening sockets there and runs the collector, which lists the ruleset with
``nft -j list ruleset`` and the sockets with psutil, both inside that namespace.  A real
connection from another namespace-local address checks that "open" and "closed" are what the
kernel does, not only what the reading says.
"""

from __future__ import annotations

import socket
import subprocess
from typing import Any, Dict, Iterator, List

import pytest

from collectors.base import Context
from collectors.firewall import SPEC
from collectors.settings import validate
from evidence.model import Status
from tests.collectors.firewall.netns import load_nft, own_netns
from tests.conftest import require_tool
from tests.evidence.shipped import judge_shipped

FILTERED = """
table inet filter {
  set admin { type ipv4_addr; flags interval; elements = { 192.0.2.0/24 } }
  chain input {
    type filter hook input priority filter; policy drop;
    iif "lo" accept
    ct state established,related accept
    ct state invalid drop
    tcp dport 2222 accept
    ip saddr @admin tcp dport 2223 accept
    tcp dport { 2224, 2225 } jump services
  }
  chain services { tcp dport 2225 drop; accept; }
}
"""
UNFILTERED = """
table inet filter {
  chain input { type filter hook input priority filter; policy accept; tcp dport 2226 drop; }
}
"""


@pytest.fixture
def netns() -> Iterator[str]:
    require_tool("nft")
    with own_netns() as name:
        yield name


def _listen(port: int, address: str = "0.0.0.0") -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(4)
    return sock


def _collect(settings: Dict[str, Any] | None = None) -> Any:
    return SPEC.collect(Context(settings=validate(settings or {}, SPEC.settings, "collectors.firewall")))


def _by_port(observed: Dict[str, Any]) -> Dict[int, Dict[str, Any]]:
    return {s["port"]: s for s in observed["sockets"]}


def _reaches(port: int) -> bool:
    """Whether a real TCP connection to a non-loopback local address gets through."""
    with socket.socket() as client:
        client.settimeout(0.5)
        try:
            client.connect(("10.99.0.1", port))
        except OSError:
            return False
        return True


def _address() -> None:
    """A non-loopback address on ``lo`` (no dummy or veth module is needed): the connection's
    packets arrive on ``lo``, so the ruleset of the kernel check does not accept on iif lo."""
    subprocess.run(["ip", "addr", "add", "10.99.0.1/32", "dev", "lo"], check=True, capture_output=True)


def test_a_filtering_ruleset_is_read_port_by_port(netns: str) -> None:
    load_nft(FILTERED)
    sockets: List[socket.socket] = [_listen(p) for p in (2222, 2223, 2224, 2225, 2230)]
    sockets.append(_listen(2231, "127.0.0.1"))
    try:
        outcome = _collect()
    finally:
        for s in sockets:
            s.close()
    assert outcome.status is Status.COMPLETE, outcome.gaps
    observed = outcome.observed
    assert observed["active"] is True
    assert observed["input_policy"] == {"ipv4": "drop", "ipv6": "drop"}
    assert observed["input_default"] == {"ipv4": "closed", "ipv6": "closed"}
    assert observed["default_denies"] is True
    found = _by_port(observed)
    assert 2231 not in found  # loopback sockets are not judged
    assert {p: (s["reach"], s["reachable_from_anywhere"]) for p, s in found.items()} == {
        2222: ("open", True),
        2223: ("restricted", False),
        2224: ("open", True),
        2225: ("closed", False),
        2230: ("closed", False),
    }
    assert found[2222]["reason"].startswith("accepted by inet filter input rule ")
    assert found[2230]["reason"] == "dropped by inet filter input policy drop"
    assert found[2222]["process"] and found[2222]["address"] == "0.0.0.0" and found[2222]["protocol"] == "tcp"
    nft = next(s for s in observed["sources"] if s["source"] == "nftables")
    assert nft["read"] is True and nft["input_chains"] == 1


def test_an_accepting_ruleset_leaves_the_listener_open_and_the_policy_fails(netns: str) -> None:
    load_nft(UNFILTERED)
    listener = _listen(2227)
    try:
        outcome = _collect()
    finally:
        listener.close()
    observed = outcome.observed
    assert observed["active"] is True  # a rule filters something
    assert observed["input_policy"] == {"ipv4": "accept", "ipv6": "accept"}
    assert observed["default_denies"] is False
    assert _by_port(observed)[2227]["reach"] == "open"
    assert _by_port(observed)[2227]["reason"] == "accepted by inet filter input policy accept"
    verdicts = judge_shipped("firewall", outcome)
    assert verdicts["firewall-listeners-filtered"] == "failing"
    assert verdicts["firewall-default-deny"] == "failing"
    assert verdicts["firewall-active"] == "passing"


def test_an_empty_ruleset_is_no_firewall(netns: str) -> None:
    load_nft("")
    listener = _listen(2228)
    try:
        outcome = _collect({"allowed_open": [{"port": 2228}]})
    finally:
        listener.close()
    observed = outcome.observed
    assert observed["active"] is False
    assert observed["input_policy"] == {"ipv4": None, "ipv6": None}
    record = _by_port(observed)[2228]
    assert (record["reach"], record["allowed_open"]) == ("open", True)
    assert record["reason"] == "no input chain filters this traffic"
    verdicts = judge_shipped("firewall", outcome)
    assert verdicts["firewall-active"] == "failing"
    assert verdicts["firewall-listeners-filtered"] == "passing"  # the one open port is allowed


def test_the_reading_agrees_with_the_kernel(netns: str) -> None:
    """Connections to a non-loopback address: what the collector calls open connects, closed does not."""
    _address()
    load_nft(
        """
table inet filter {
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    tcp dport 2240 accept
  }
}
"""
    )
    open_one, closed_one = _listen(2240), _listen(2241)
    try:
        found = _by_port(_collect().observed)
        assert (found[2240]["reach"], found[2241]["reach"]) == ("open", "closed")
        assert _reaches(2240) is True
        assert _reaches(2241) is False
    finally:
        open_one.close()
        closed_one.close()
