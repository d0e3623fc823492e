"""The ruleset parsers on real captured output (tests/fixtures/firewall/README.md), crafted edge
cases, and random or mutated input, which must never raise anything but the parser's own error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.base import Context
from collectors.firewall.collect import assemble, frontends
from collectors.firewall.parse_frontends import parse_key_values
from collectors.firewall.parse_iptables import IptablesError, parse_iptables
from collectors.firewall.parse_nft import NftError, parse_nft
from collectors.firewall.ruleset import Probe, reach
from collectors.ports.model import Listener
from evidence.model import Gap
from tests.conftest import FIXTURES

HERE = FIXTURES / "firewall"
UFW4 = (HERE / "iptables-save_debian-12_iptables-1.8.9-nft_ufw-0.36.2-enabled.txt").read_text()
UFW6 = (HERE / "ip6tables-save_debian-12_iptables-1.8.9-nft_ufw-0.36.2-enabled.txt").read_text()
UFW_NFT = (HERE / "nft-json_debian-12_nftables-1.0.6_ufw-0.36.2-enabled.json").read_text()
LEGACY = (HERE / "iptables-legacy-save_debian-12_iptables-1.8.9_hardened-host.txt").read_text()


def _state(rulesets: Any, family: str, protocol: str, port: int) -> str:
    return reach(rulesets, Probe(family, protocol, port)).state


def test_ufw_rules_read_through_iptables_save() -> None:
    rulesets = [parse_iptables(UFW4, "ipv4"), parse_iptables(UFW6, "ipv6", "ip6tables")]
    assert _state(rulesets, "ipv4", "tcp", 22) == "open"  # ufw allow 22/tcp
    assert _state(rulesets, "ipv6", "tcp", 22) == "open"
    assert _state(rulesets, "ipv4", "tcp", 5432) == "restricted"  # ufw allow from 10.0.0.0/8 ... 5432
    assert _state(rulesets, "ipv6", "tcp", 5432) == "closed"  # that rule is IPv4 only
    assert _state(rulesets, "ipv4", "tcp", 8080) == "closed"  # default deny (incoming)
    assert _state(rulesets, "ipv4", "udp", 68) == "restricted"  # DHCP replies: --sport 67 only
    found = reach(rulesets, Probe("ipv4", "tcp", 5432))
    assert found.reason.endswith("-A ufw-user-input -s 10.0.0.0/8 -p tcp -m tcp --dport 5432 -j ACCEPT")
    assert reach(rulesets, Probe("ipv4", "tcp", 8080)).reason == "dropped by INPUT policy drop"


def test_ufw_seen_by_nft_alone_is_unknown_where_iptables_nft_hides_its_matches() -> None:
    ruleset = parse_nft(UFW_NFT)
    assert ruleset.compat == {"ip filter", "ip6 filter"}
    found = reach([ruleset], Probe("ipv4", "tcp", 8080))
    assert found.state == "unknown" and "iptables-nft compat match conntrack" in found.reason
    # the collector reads these tables with iptables-nft-save instead: the nft reading less them
    # leaves no input chain of its own
    assert ruleset.without_tables({"ip filter", "ip6 filter"}).bases == []


def test_a_hand_written_legacy_ruleset() -> None:
    rules = [parse_iptables(LEGACY, "ipv4", "iptables-legacy-save")]
    assert _state(rules, "ipv4", "tcp", 22) == "open"  # fail2ban's REJECT of one address does not close it
    assert _state(rules, "ipv4", "tcp", 443) == "open"
    assert _state(rules, "ipv4", "tcp", 3306) == "unknown"  # -m mark ... -j ACCEPT may let it in
    assert "option --mark" in reach(rules, Probe("ipv4", "tcp", 3306)).reason
    assert _state(rules, "ipv4", "tcp", 8050) == "open"  # --dport 8000:8099
    assert _state(rules, "ipv4", "udp", 51820) == "open"  # a rate limit passes part of anyone's traffic
    assert _state(rules, "ipv6", "tcp", 22) == "open"  # no IPv6 ruleset read: nothing filters IPv6


def test_nft_crafted_cases() -> None:
    def one(exprs: Any, policy: str = "drop", more: Any = ()) -> Any:
        items = [
            {
                "chain": {
                    "family": "inet",
                    "table": "t",
                    "name": "in",
                    "type": "filter",
                    "hook": "input",
                    "prio": 0,
                    "policy": policy,
                }
            },
            {"rule": {"family": "inet", "table": "t", "chain": "in", "handle": 3, "expr": exprs}},
            *more,
        ]
        return parse_nft(json.dumps({"nftables": items}))

    dport = {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 80}}
    assert _state([one([dport, {"accept": None}])], "ipv6", "tcp", 80) == "open"
    assert _state([one([dport, {"accept": None}])], "ipv6", "udp", 80) == "closed"  # tcp only
    queue = one([dport, {"queue": {"num": 1}}])
    assert _state([queue], "ipv4", "tcp", 80) == "unknown"
    named = {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": "@missing"}}
    assert _state([one([named, {"accept": None}])], "ipv4", "tcp", 80) == "unknown"
    not_ours = {"match": {"op": "!=", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}}
    assert _state([one([not_ours, {"drop": None}], policy="accept")], "ipv4", "tcp", 80) == "closed"
    assert _state([one([not_ours, {"drop": None}], policy="accept")], "ipv4", "tcp", 22) == "open"
    loop = one([{"jump": {"target": "in"}}])
    assert reach([loop], Probe("ipv4", "tcp", 1)).reason.startswith("chain inet t in is reached through more than")


def test_frontend_files_as_shipped_and_enabled(tmp_path: Path) -> None:
    assert parse_key_values((HERE / "ufw-conf_debian-12_ufw-0.36.2_shipped.conf").read_text())["ENABLED"] == "no"
    assert parse_key_values((HERE / "ufw-conf_debian-12_ufw-0.36.2_enabled.conf").read_text())["ENABLED"] == "yes"
    defaults = parse_key_values((HERE / "default-ufw_debian-12_ufw-0.36.2_shipped").read_text())
    assert defaults["DEFAULT_INPUT_POLICY"] == "DROP" and defaults["IPV6"] == "yes"
    (tmp_path / "etc/ufw").mkdir(parents=True)
    (tmp_path / "etc/default").mkdir()
    (tmp_path / "etc/ufw/ufw.conf").write_bytes((HERE / "ufw-conf_debian-12_ufw-0.36.2_enabled.conf").read_bytes())
    (tmp_path / "etc/default/ufw").write_bytes((HERE / "default-ufw_debian-12_ufw-0.36.2_shipped").read_bytes())
    gaps: List[Gap] = []
    seen = frontends(Context(root=tmp_path), [parse_iptables(UFW4, "ipv4")], gaps)
    assert seen["ufw"] == {"installed": True, "enabled": True, "default_input_policy": "DROP", "rules_loaded": True}
    assert seen["firewalld"] == {"installed": False, "default_zone": None, "rules_loaded": False}
    assert gaps == []
    # firewalld: the firewalld.conf Debian 12 ships (real), and its nft table (crafted: no running
    # firewalld here, it needs the system D-Bus)
    (tmp_path / "etc/firewalld").mkdir()
    shipped = HERE / "firewalld-conf_debian-12_firewalld-1.3.3_shipped.conf"
    (tmp_path / "etc/firewalld/firewalld.conf").write_text(shipped.read_text())
    table = {
        "chain": {"family": "inet", "table": "firewalld", "name": "filter_INPUT", "type": "filter", "hook": "input"}
    }
    loaded = parse_nft(json.dumps({"nftables": [table]}))
    seen = frontends(Context(root=tmp_path), [loaded], gaps)
    assert seen["firewalld"] == {"installed": True, "default_zone": "public", "rules_loaded": True}


def test_an_unreadable_source_leaves_open_sockets_unknown_never_passing() -> None:
    sources = [
        {"source": "nftables", "read": False, "input_chains": None, "rules": None},
        {"source": "iptables-legacy-save", "read": True, "input_chains": 0, "rules": 0},
    ]
    listener = Listener("tcp", "ipv4", "0.0.0.0", 5900, (10,))
    observed: Dict[str, Any] = assemble([], sources, [listener], {10: "Xvnc"}, {"allowed_open": []})
    assert observed["active"] is None and observed["default_denies"] is None
    record = observed["sockets"][0]
    assert (record["reach"], record["reachable_from_anywhere"], record["process"]) == ("unknown", None, "Xvnc")
    assert record["reason"].startswith("nftables could not be read")


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=400))
def test_iptables_random_text_never_raises_anything_else(text: str) -> None:
    try:
        ruleset = parse_iptables(text, "ipv4")
    except IptablesError:
        return
    reach([ruleset], Probe("ipv4", "tcp", 22))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 105), st.text(max_size=30)), max_size=6))
def test_iptables_mutated_capture_never_raises_anything_else(edits: Any) -> None:
    lines = UFW4.splitlines()
    for index, text in edits:
        lines[index % len(lines)] = text
    try:
        ruleset = parse_iptables("\n".join(lines), "ipv4")
    except IptablesError:
        return
    reach([ruleset], Probe("ipv4", "tcp", 22))


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 70000) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(_JSON)
def test_nft_random_json_never_raises_anything_else(value: Any) -> None:
    try:
        ruleset = parse_nft(json.dumps({"nftables": value}))
    except NftError:
        return
    reach([ruleset], Probe("ipv6", "udp", 53))


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_nft_mutated_capture_never_raises_anything_else(data: st.DataObject) -> None:
    items = json.loads(UFW_NFT)["nftables"]
    for _ in range(data.draw(st.integers(1, 5))):
        index = data.draw(st.integers(0, len(items) - 1))
        items[index] = data.draw(_JSON)
    try:
        ruleset = parse_nft(json.dumps({"nftables": items}))
    except NftError:
        return
    for protocol in ("tcp", "udp"):
        reach([ruleset], Probe("ipv4", protocol, 22))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_key_values_never_raise(text: str) -> None:
    assert isinstance(parse_key_values(text), dict)


@pytest.mark.parametrize("text", ["", "{}", '{"nftables": 3}', "[1]", "not json"])
def test_nft_bad_listing_is_a_clear_error(text: str) -> None:
    with pytest.raises(NftError):
        parse_nft(text)
