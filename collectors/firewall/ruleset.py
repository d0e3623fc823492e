"""A packet filter reduced to what decides whether a new connection reaches a local port.

Both parsers (``parse_nft``, ``parse_iptables``) turn their tool's ruleset into these
records; :func:`reach` then walks the input chains for one probe packet: a new TCP or UDP
connection from an unknown source on a non-loopback interface to one local port.

The reading is conservative, so that a port is never called filtered by mistake:
a rule whose match is not understood may accept (then a port that would otherwise be
filtered is *unknown*) but is never taken to drop; a match on the source (address,
interface, MAC) makes an accept *restricted*, never a drop of everything.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Set, Tuple

MAX_DEPTH = 16  # nftables refuses deeper jumps (NFT_JUMP_STACK_SIZE); iptables has no limit of its own


class Match(enum.Enum):
    """How much of the probe's traffic a condition (or a whole rule's conditions) matches."""

    ALL = "all"  # every probe packet, from any source
    NONE = "none"  # no probe packet
    SOURCES = "sources"  # probe packets from some sources only (address, interface, MAC)
    SOME = "some"  # some probe packets from any source (a rate limit, one of several local addresses)
    UNKNOWN = "unknown"  # not understood


@dataclass(frozen=True)
class Probe:
    """A new connection to a local socket; ``address`` None for a wildcard socket (any local address)."""

    family: str  # ipv4 | ipv6
    protocol: str  # tcp | udp
    port: int
    address: Optional[str] = None


@dataclass(frozen=True)
class Cond:
    """One condition of a rule, already decided for every probe it can be asked about.

    ``kind`` says what it tests; :meth:`test` answers for a probe.  Kinds:
    ``family`` (values: ipv4/ipv6), ``protocol`` (tcp/udp/...), ``dport`` (ranges),
    ``ctstate`` (new/established/...), ``iface_lo`` (the packet came in on loopback),
    ``const`` (values ``("true",)`` or ``("false",)``: decided the same for every probe, e.g. the
    destination is a local unicast address),
    ``source`` / ``some`` (match part of the probe traffic), ``daddr`` (addresses),
    ``unknown`` (``why`` says what).
    """

    kind: str
    values: Tuple[str, ...] = ()
    ranges: Tuple[Tuple[int, int], ...] = ()
    negate: bool = False
    why: str = ""

    def test(self, probe: Probe) -> Match:
        if self.kind == "unknown":
            return Match.UNKNOWN
        if self.kind in ("source", "some"):
            return Match.SOURCES if self.kind == "source" else Match.SOME
        if self.kind == "daddr":
            return _daddr(self, probe)
        if self.kind == "family":
            hit = probe.family in self.values
        elif self.kind == "protocol":
            hit = probe.protocol in self.values
        elif self.kind == "dport":
            hit = any(low <= probe.port <= high for low, high in self.ranges)
        elif self.kind == "ctstate":
            hit = "new" in self.values  # the first packet of a connection
        elif self.kind == "iface_lo":
            hit = False  # the probe comes from another host
        elif self.kind == "const":
            hit = self.values == ("true",)
        else:
            return Match.UNKNOWN
        return Match.ALL if hit != self.negate else Match.NONE


def _daddr(cond: Cond, probe: Probe) -> Match:
    """A destination match: decided for a socket on one address, partial for a wildcard socket."""
    if probe.address is None:
        return Match.SOME  # the socket takes every local address; the rule covers some of them
    import ipaddress

    try:
        address = ipaddress.ip_address(probe.address)
        hit = any(address in ipaddress.ip_network(v, strict=False) for v in cond.values)
    except ValueError:
        return Match.UNKNOWN
    return Match.ALL if hit != cond.negate else Match.NONE


def combine(matches: Sequence[Match]) -> Match:
    """The conditions of one rule together (all must hold)."""
    if Match.NONE in matches:
        return Match.NONE
    if Match.UNKNOWN in matches:
        return Match.UNKNOWN
    if Match.SOURCES in matches:
        return Match.SOURCES
    if Match.SOME in matches:
        return Match.SOME
    return Match.ALL


@dataclass(frozen=True)
class Rule:
    """Conditions, then a verdict: accept | drop | reject | jump | goto | return | none | unknown.

    ``branches`` holds a verdict map (nft ``vmap``): each (conditions, verdict, target) applies
    when its conditions hold; ``where`` names the rule in reasons ("inet filter input #7").
    """

    conds: Tuple[Cond, ...]
    verdict: str
    where: str
    target: str = ""
    branches: Tuple[Tuple[Tuple[Cond, ...], str, str], ...] = ()
    why: str = ""


@dataclass(frozen=True)
class BaseChain:
    """A chain the kernel calls for incoming packets: its families, hook and default policy."""

    name: str  # key into Ruleset.chains
    families: Tuple[str, ...]
    hook: str  # input | prerouting
    policy: str  # accept | drop


@dataclass
class Ruleset:
    """One tool's view: base chains and every chain's rules (a chain named by table and name)."""

    source: str
    bases: List[BaseChain] = field(default_factory=list)
    chains: Dict[str, List[Rule]] = field(default_factory=dict)
    compat: Set[str] = field(default_factory=set)
    """Tables ("ip filter") holding iptables-nft compat expressions that nft's JSON does not spell
    out; ``iptables-nft-save`` reads them instead."""

    def without_tables(self, tables: Set[str]) -> Ruleset:
        """This ruleset less the base chains of ``tables`` (read by another tool)."""
        bases = [b for b in self.bases if " ".join(b.name.split(" ")[:2]) not in tables]
        return Ruleset(self.source, bases, self.chains, self.compat - tables)


@dataclass(frozen=True)
class Reach:
    """``open`` (a new connection from any source gets through), ``restricted`` (only from some
    sources), ``closed`` (from none) or ``unknown``; ``reason`` names the deciding rule."""

    state: str
    reason: str


_ORDER = {"closed": 0, "restricted": 1, "unknown": 2, "open": 3}


class _Undecided(Exception):
    pass


@dataclass
class _Walk:
    probe: Probe
    chains: Dict[str, List[Rule]]
    restricted: List[str] = field(default_factory=list)
    partly_open: List[str] = field(default_factory=list)
    maybe: List[str] = field(default_factory=list)
    decided_by: str = ""

    def chain(self, name: str, context: Match, depth: int) -> Optional[str]:
        """``accept``/``drop`` when the whole context is decided here, None when it falls through."""
        if depth > MAX_DEPTH:
            raise _Undecided(f"chain {name} is reached through more than {MAX_DEPTH} jumps")
        if name not in self.chains:
            raise _Undecided(f"chain {name} is jumped to but not listed")
        for rule in self.chains[name]:
            for conds, verdict, target in _alternatives(rule):
                decided = self.rule(rule, conds, verdict, target, context, depth)
                if decided is not None:
                    return decided if decided != "return" else None
        return None

    def rule(
        self, rule: Rule, conds: Sequence[Cond], verdict: str, target: str, context: Match, depth: int
    ) -> Optional[str]:
        match = combine([context, *(c.test(self.probe) for c in conds)])
        if match is Match.NONE or verdict == "none":
            return None
        what = rule.where + (f" ({rule.why})" if rule.why else "")
        if verdict == "unknown":
            if match is Match.ALL:
                raise _Undecided(f"{what} has a verdict that is not understood")
            self.maybe.append(f"{what} has a verdict that is not understood")
            return None
        if match is Match.ALL:
            if verdict in ("accept", "drop", "reject"):
                self.decided_by = what
                return "accept" if verdict == "accept" else "drop"
            if verdict == "return":
                return "return"
            found = self.chain(target, match, depth + 1)
            if found is not None:
                return found
            return "return" if verdict == "goto" else None
        # Part of the traffic: record what it may do and go on with the rest.
        if verdict == "accept":
            if match is Match.SOURCES:
                self.restricted.append(rule.where)
            elif match is Match.SOME:
                self.partly_open.append(rule.where)
            else:
                self.maybe.append(f"{rule.where} may accept: {rule.why or 'a match is not understood'}")
        elif verdict in ("jump", "goto"):
            self.chain(target, match, depth + 1)
        return None  # a partial drop, reject or return leaves the rest of the traffic going on


def _alternatives(rule: Rule) -> Sequence[Tuple[Tuple[Cond, ...], str, str]]:
    if not rule.branches:
        return [(rule.conds, rule.verdict, rule.target)]
    return [(rule.conds + conds, verdict, target) for conds, verdict, target in rule.branches]


def reach_chain(ruleset: Ruleset, base: BaseChain, probe: Probe) -> Reach:
    """What one base chain does with ``probe``."""
    walk = _Walk(probe, ruleset.chains)
    try:
        verdict = walk.chain(base.name, Match.ALL, 0)
    except _Undecided as err:
        return Reach("unknown", str(err))
    if verdict is None:
        verdict, walk.decided_by = base.policy, f"{base.name} policy {base.policy}"
    if verdict == "accept":
        return Reach("open", f"accepted by {walk.decided_by}")
    if walk.partly_open:
        return Reach("open", f"accepted from any source, in part, by {walk.partly_open[0]}")
    if walk.maybe:
        return Reach("unknown", walk.maybe[0])
    if walk.restricted:
        return Reach("restricted", f"accepted only from some sources by {walk.restricted[0]}")
    return Reach("closed", f"dropped by {walk.decided_by}")


def reach(rulesets: Sequence[Ruleset], probe: Probe) -> Reach:
    """What every base chain the probe passes does with it, together: it gets through only if each
    one lets it.  No input chain at all: nothing filters, the port is open."""
    found: List[Reach] = []
    for ruleset in rulesets:
        for base in ruleset.bases:
            if probe.family in base.families:
                found.append(reach_chain(ruleset, base, probe))
    if not found:
        return Reach("open", "no input chain filters this traffic")
    return min(found, key=lambda r: _ORDER[r.state])


def worst(reaches: Sequence[Reach]) -> Reach:
    """The most open of several readings (an IPv6 wildcard socket also takes IPv4)."""
    return max(reaches, key=lambda r: _ORDER[r.state])
