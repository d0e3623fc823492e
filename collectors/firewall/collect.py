"""Read the packet filter (nft, iptables-legacy), the front-ends' files and the listening sockets,
and say for every socket beyond loopback whether a new connection from anywhere gets through.

All I/O goes through the :class:`~collectors.base.Context`; the sockets come from the ports
collector's reading of the socket table (psutil), so both collectors see the same sockets.
"""

from __future__ import annotations

import shutil
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from collectors.base import Context, describe_os_error
from collectors.firewall.parse_frontends import parse_key_values
from collectors.firewall.parse_iptables import IptablesError, parse_iptables
from collectors.firewall.parse_nft import NftError, parse_nft
from collectors.firewall.ruleset import Probe, Reach, Ruleset, reach, worst
from collectors.ports.exposure import classify_address, parse_address
from collectors.ports.model import Listener
from evidence.model import Gap, Outcome

FAMILIES = ("ipv4", "ipv6")
_LEGACY = (("iptables-legacy-save", "ipv4"), ("ip6tables-legacy-save", "ipv6"))
_ANY_SAVE = (("iptables-save", "ipv4"), ("ip6tables-save", "ipv6"))


def _which(ctx: Context, name: str) -> Optional[str]:
    if "/" in name:
        return name if ctx.path(name).exists() else None
    return shutil.which(name, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")


def read_rulesets(ctx: Context) -> Tuple[List[Ruleset], List[Dict[str, Any]], List[Gap]]:
    """Every ruleset this node's tools list, a record per source and a gap per source not read.

    nft lists nftables and iptables-nft rules alike; iptables-legacy rules live in other kernel
    tables and are read apart.  Without nft, ``iptables-save`` (either variant) is read instead.
    """
    timeout = float(ctx.settings.get("command_timeout", 5.0))
    rulesets: List[Ruleset] = []
    sources: List[Dict[str, Any]] = []
    gaps: List[Gap] = []
    nft = _which(ctx, str(ctx.settings.get("nft_binary", "nft")))
    commands: List[Tuple[str, Sequence[str], Optional[str]]] = []
    if nft:
        commands.append(("nftables", [nft, "-j", "list", "ruleset"], None))
    if ctx.settings.get("iptables_legacy", True) or not nft:
        for tool, tool_family in _LEGACY if nft else _ANY_SAVE:
            found = _which(ctx, tool)
            if found:
                commands.append((tool, [found], tool_family))
    for name, argv, family in commands:  # grows while it runs: see _compat_commands
        result = ctx.command(argv, timeout=timeout)
        record: Dict[str, Any] = {"source": name, "read": False, "input_chains": None, "rules": None}
        sources.append(record)
        if not result.ok:
            reason = result.describe_failure()
            if not ctx.is_root:
                reason += f" (running as uid {ctx.euid}: reading the ruleset needs root or CAP_NET_ADMIN)"
            gaps.append(Gap(f"{name} ruleset", reason))
            record["reason"] = reason
            continue
        try:
            ruleset = parse_nft(result.text) if family is None else parse_iptables(result.text, family, name)
        except (NftError, IptablesError) as err:
            gaps.append(Gap(f"{name} ruleset", f"unreadable output: {err}"))
            record["reason"] = f"unreadable output: {err}"
            continue
        record.update(read=True, input_chains=len(ruleset.bases), rules=sum(len(r) for r in ruleset.chains.values()))
        rulesets.append(ruleset)
        if ruleset.compat:
            commands.extend(_compat_commands(ctx, ruleset.compat))
    return [_replace_compat(r, rulesets) for r in rulesets], sources, gaps


def _compat_commands(ctx: Context, tables: Set[str]) -> List[Tuple[str, Sequence[str], Optional[str]]]:
    """iptables-nft's own listing of the tables whose rules nft's JSON shows only as "xt" stubs."""
    out: List[Tuple[str, Sequence[str], Optional[str]]] = []
    for table, name, family in (
        ("ip filter", "iptables-nft-save", "ipv4"),
        ("ip6 filter", "ip6tables-nft-save", "ipv6"),
    ):
        found = _which(ctx, name) if table in tables else None
        if found:
            out.append((name, [found, "-t", "filter"], family))
    return out


def _replace_compat(ruleset: Ruleset, rulesets: Sequence[Ruleset]) -> Ruleset:
    """The nft reading less the tables iptables-nft-save read (each one's rules are listed once)."""
    done = {
        t
        for r in rulesets
        for t, n in (("ip filter", "iptables-nft-save"), ("ip6 filter", "ip6tables-nft-save"))
        if r.source == n
    }
    return ruleset.without_tables(done) if ruleset.compat & done else ruleset


def _filters(ruleset: Ruleset) -> bool:
    """Whether a ruleset filters input at all: an input chain with a rule or a drop policy."""
    return any(b.policy == "drop" or ruleset.chains.get(b.name) for b in ruleset.bases)


def _policy(rulesets: Sequence[Ruleset], family: str) -> Optional[str]:
    chains = [b for r in rulesets for b in r.bases if family in b.families]
    if not chains:
        return None
    return "drop" if any(b.policy == "drop" for b in chains) else "accept"


def probes(listener: Listener) -> List[Probe]:
    """A new connection to this socket, per family it takes (an IPv6 ``::`` socket takes IPv4 too,
    unless IPV6_V6ONLY is set, which the socket table does not show)."""
    address = parse_address(listener.address)
    specific = None if address.is_unspecified else str(address)
    if listener.family == "ipv6" and address.version == 6 and address.is_unspecified:
        return [Probe("ipv4", listener.protocol, listener.port), Probe("ipv6", listener.protocol, listener.port)]
    return [Probe("ipv4" if address.version == 4 else "ipv6", listener.protocol, listener.port, specific)]


def judge_socket(rulesets: Sequence[Ruleset], listener: Listener, unread: Sequence[str]) -> Reach:
    """Whether a new connection from anywhere reaches ``listener``; unknown (never open or closed by
    guess) when a source could not be read and the rules that were read let it through."""
    found = worst([reach(rulesets, p) for p in probes(listener)])
    if unread and found.state in ("open", "unknown"):
        return Reach("unknown", f"{', '.join(unread)} could not be read; the rules read {found.reason}")
    return found


def _allowed(listener: Listener, allowed: Sequence[Mapping[str, Any]]) -> bool:
    return any(int(a["port"]) == listener.port and a["protocol"] in ("any", listener.protocol) for a in allowed)


def socket_record(listener: Listener, found: Reach, name: Optional[str], allowed: bool) -> Dict[str, Any]:
    return {
        "protocol": listener.protocol,
        "family": listener.family,
        "address": listener.address,
        "port": listener.port,
        "process": name,
        "reach": found.state,
        "reachable_from_anywhere": {"open": True, "restricted": False, "closed": False}.get(found.state),
        "reason": found.reason,
        "allowed_open": allowed,
    }


def frontends(ctx: Context, rulesets: Sequence[Ruleset], gaps: List[Gap]) -> Dict[str, Any]:
    """ufw and firewalld: installed (their file is there), switched on, and their rules loaded."""
    chains = [name for r in rulesets for name in r.chains]
    ufw_conf = _read_conf(ctx, str(ctx.settings.get("ufw_config", "/etc/ufw/ufw.conf")), gaps)
    ufw_defaults = _read_conf(ctx, str(ctx.settings.get("ufw_defaults", "/etc/default/ufw")), gaps)
    firewalld = _read_conf(ctx, str(ctx.settings.get("firewalld_config", "/etc/firewalld/firewalld.conf")), gaps)
    return {
        "ufw": {
            "installed": ufw_conf is not None,
            "enabled": None if ufw_conf is None else ufw_conf.get("ENABLED", "no").lower() == "yes",
            "default_input_policy": None if ufw_defaults is None else ufw_defaults.get("DEFAULT_INPUT_POLICY"),
            "rules_loaded": any("ufw-user-input" in name.split(" ")[-1] for name in chains),
        },
        "firewalld": {
            "installed": firewalld is not None,
            "default_zone": None if firewalld is None else firewalld.get("DefaultZone"),
            "rules_loaded": any(
                name.startswith(("inet firewalld ", "ip firewalld ", "ip6 firewalld ")) for name in chains
            ),
        },
    }


def _read_conf(ctx: Context, path: str, gaps: List[Gap]) -> Optional[Dict[str, str]]:
    try:
        return parse_key_values(ctx.read_text(path, 256 * 1024))
    except FileNotFoundError:
        return None
    except OSError as err:
        gaps.append(Gap(path, describe_os_error(err, path)))
        return None


def assemble(
    rulesets: Sequence[Ruleset],
    sources: List[Dict[str, Any]],
    listeners: Sequence[Listener],
    names: Mapping[int, Optional[str]],
    settings: Mapping[str, Any],
) -> Dict[str, Any]:
    """The observed facts, from what was read (pure)."""
    unread = [s["source"] for s in sources if not s["read"]]
    allowed = settings.get("allowed_open", [])
    records = []
    for listener in listeners:
        if classify_address(listener.address).kind == "loopback":
            continue
        found = judge_socket(rulesets, listener, unread)
        owner = names.get(listener.pids[0]) if listener.pids else None
        records.append(socket_record(listener, found, owner, _allowed(listener, allowed)))
    default: Dict[str, Optional[str]] = {}
    for family in FAMILIES:
        # a port no rule names (0): what the ruleset does with everything it does not mention
        found = reach(rulesets, Probe(family, "tcp", 0))
        default[family] = "unknown" if unread and found.state in ("open", "unknown") else found.state
    known = [v for v in default.values() if v != "unknown"]
    read_any = bool(rulesets)
    active: Optional[bool] = any(_filters(r) for r in rulesets)
    if not active and unread:
        active = None  # what could not be read may filter
    return {
        "active": active if read_any or not unread else None,
        "input_policy": {f: _policy(rulesets, f) if read_any else None for f in FAMILIES},
        "input_default": default,
        "default_denies": None if len(known) < len(default) else all(v in ("closed", "restricted") for v in known),
        "sources": sources,
        "sockets": records,
        "counts": {
            state: sum(1 for r in records if r["reach"] == state)
            for state in ("open", "restricted", "closed", "unknown")
        },
    }


def collect(ctx: Context, entries: Optional[Sequence[Any]] = None) -> Outcome:
    """Read everything and describe it; ``entries`` (psutil-shaped) replace the live socket table."""
    from collectors.ports import read_psutil, report
    from collectors.ports.parse_sockets import listeners

    rulesets, sources, gaps = read_rulesets(ctx)
    if not sources:
        return Outcome.not_present("neither nft nor iptables-save is installed: no packet filter can be read")
    if entries is None:
        read, why = read_psutil.connections(ctx)
        if read is None:
            return Outcome.failed(why or "cannot list sockets")
        entries = read
    found, problems = listeners(entries)
    if problems:
        gaps.append(Gap(report.entries(len(problems)), "unreadable: " + "; ".join(problems[:3])))
    names = {pid: read_psutil.lookup_process(ctx, pid)[0].name for pid in sorted({s.pids[0] for s in found if s.pids})}
    observed = assemble(rulesets, sources, found, names, ctx.settings)
    observed["frontends"] = frontends(ctx, rulesets, gaps)
    return Outcome.from_parts(observed, gaps)


def summary(observed: Mapping[str, Any]) -> str:
    """One line for the ``collect`` table."""
    counts = observed.get("counts")
    if not isinstance(counts, Mapping):
        return ""
    state = {True: "active", False: "inactive", None: "unknown"}.get(observed.get("active"), "unknown")
    return (
        f"filter {state}; {counts.get('open', 0)} sockets open to anyone, {counts.get('restricted', 0)} restricted, "
        f"{counts.get('closed', 0)} closed, {counts.get('unknown', 0)} unknown"
    )
