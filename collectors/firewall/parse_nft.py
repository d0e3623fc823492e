"""Parse ``nft -j list ruleset`` (libnftables JSON, schema version 1) into a :class:`Ruleset`.

Read: tables of the families ``ip``, ``ip6`` and ``inet``; base chains of type ``filter``
on the ``input`` and ``prerouting`` hooks with their policy; every rule's matches,
statements and verdict (libnftables-json(5)).  A match that is not understood becomes an
``unknown`` condition naming it, never an error: the reading stays conservative
(``collectors/firewall/ruleset.py``).  ``nat`` chains, ``netdev`` ingress and bridge
tables are not read (docs/collectors/firewall.md).
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional, Tuple

from collectors.firewall.ruleset import BaseChain, Cond, Rule, Ruleset

_FAMILIES = {"ip": ("ipv4",), "ip6": ("ipv6",), "inet": ("ipv4", "ipv6")}
_HOOKS = ("input", "prerouting")
_L3 = {"ip": "ipv4", "ip6": "ipv6"}
_L4 = {"tcp", "udp", "udplite", "sctp", "dccp", "icmp", "icmpv6", "igmp", "esp", "ah", "gre"}
_STATEMENTS = {"counter", "log", "set", "map", "mangle", "meta", "ct", "notrack", "quota_stmt", "synproxy", "flow"}
_SIMPLE_VERDICTS = {"accept", "drop", "reject", "return"}


class NftError(ValueError):
    """The text is not an ``nft -j`` listing."""


def parse_nft(text: str) -> Ruleset:
    """The input-side filter of an ``nft -j list ruleset`` listing; raises :class:`NftError`."""
    try:
        data = json.loads(text)
    except ValueError as err:
        raise NftError(f"not JSON: {err}") from err
    items = data.get("nftables") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise NftError("no 'nftables' list at the top")
    sets: Dict[Tuple[str, str, str], Any] = {}
    ruleset = Ruleset("nftables")
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("set"), dict):
            s = item["set"]
            sets[(str(s.get("family")), str(s.get("table")), str(s.get("name")))] = s.get("elem", [])
    for item in items:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("chain"), dict):
            _chain(item["chain"], ruleset)
        elif isinstance(item.get("rule"), dict):
            _rule(item["rule"], ruleset, sets)
    return ruleset


def _key(obj: Mapping[str, Any], name: Any) -> str:
    return f"{obj.get('family')} {obj.get('table')} {name}"


def _chain(chain: Mapping[str, Any], ruleset: Ruleset) -> None:
    family = str(chain.get("family"))
    if family not in _FAMILIES:
        return
    key = _key(chain, chain.get("name"))
    ruleset.chains.setdefault(key, [])
    if chain.get("type") == "filter" and chain.get("hook") in _HOOKS:
        policy = "drop" if chain.get("policy") == "drop" else "accept"  # the kernel's default is accept
        ruleset.bases.append(BaseChain(key, _FAMILIES[family], str(chain["hook"]), policy))


def _rule(rule: Mapping[str, Any], ruleset: Ruleset, sets: Mapping[Tuple[str, str, str], Any]) -> None:
    family = str(rule.get("family"))
    if family not in _FAMILIES:
        return
    key = _key(rule, rule.get("chain"))
    where = f"{key} rule {rule.get('handle', '?')}"
    conds: List[Cond] = []
    verdict, target, why = "none", "", ""
    branches: Tuple[Tuple[Tuple[Cond, ...], str, str], ...] = ()
    exprs = rule.get("expr")
    for expr in exprs if isinstance(exprs, list) else []:
        if not isinstance(expr, dict) or len(expr) != 1:
            conds.append(Cond("unknown", why="an expression that is not an object"))
            continue
        ((name, body),) = expr.items()
        lookup = _SetLookup(sets, str(rule.get("family")), str(rule.get("table")))
        if name == "match" and isinstance(body, dict):
            conds.extend(_match(body, lookup))
        elif name in _SIMPLE_VERDICTS:
            verdict = name
        elif name in ("jump", "goto") and isinstance(body, dict):
            verdict, target = name, _key(rule, body.get("target"))
        elif name == "continue":
            verdict = "none"
        elif name in ("limit", "quota"):
            conds.append(Cond("some"))  # passes part of the traffic from any source
        elif name == "vmap" and isinstance(body, dict):
            verdict, branches = "vmap", _vmap(body, lookup, rule)
        elif name == "xt":
            ruleset.compat.add(f"{family} {rule.get('table')}")
            kind = body.get("type") if isinstance(body, dict) else None
            label = f"iptables-nft compat {kind} {body.get('name') if isinstance(body, dict) else '?'}"
            if kind == "target":
                verdict, why = "unknown", label
            else:
                conds.append(Cond("unknown", why=label))
        elif name in _STATEMENTS:
            continue
        elif name in ("queue", "dnat", "snat", "masquerade", "redirect", "tproxy", "fwd", "dup"):
            verdict, why = "unknown", name
        else:
            conds.append(Cond("unknown", why=f"expression {name!r}"))
    unknown = [c.why for c in conds if c.kind == "unknown"]
    why = why or (unknown[0] if unknown else "")
    if verdict == "vmap":
        ruleset.chains.setdefault(key, []).append(Rule(tuple(conds), "none", where, branches=branches, why=why))
    else:
        ruleset.chains.setdefault(key, []).append(Rule(tuple(conds), verdict, where, target, why=why))


class _SetLookup:
    def __init__(self, sets: Mapping[Tuple[str, str, str], Any], family: str, table: str) -> None:
        self.sets, self.family, self.table = sets, family, table

    def __call__(self, name: str) -> Optional[Any]:
        return self.sets.get((self.family, self.table, name))


def _values(right: Any, lookup: _SetLookup) -> Optional[List[Any]]:
    """The values a match compares with: a value, an anonymous set, a range, a named set."""
    if isinstance(right, str) and right.startswith("@"):
        found = lookup(right[1:])
        return None if found is None else _values({"set": found if isinstance(found, list) else [found]}, lookup)
    if isinstance(right, dict) and "set" in right:
        items = right["set"] if isinstance(right["set"], list) else [right["set"]]
        out: List[Any] = []
        for item in items:
            if isinstance(item, dict) and "elem" in item:  # an element with options: {"elem": {"val": ...}}
                elem = item["elem"]
                out.append(elem.get("val") if isinstance(elem, dict) else elem)
            else:
                out.append(item)
        return out
    if isinstance(right, list):
        return list(right)
    return [right]


def _ranges(values: List[Any]) -> Optional[Tuple[Tuple[int, int], ...]]:
    out = []
    for value in values:
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            out.append((value, value))
        elif isinstance(value, dict) and isinstance(value.get("range"), list) and len(value["range"]) == 2:
            low, high = value["range"]
            if not (isinstance(low, int) and isinstance(high, int)) or isinstance(low, bool) or isinstance(high, bool):
                return None
            out.append((low, high))
        else:
            return None  # a service name ("ssh") or an expression: not decided here
    return tuple(out)


def _addresses(values: List[Any]) -> Optional[Tuple[str, ...]]:
    out = []
    for value in values:
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, dict) and isinstance(value.get("prefix"), dict):
            out.append(f"{value['prefix'].get('addr')}/{value['prefix'].get('len')}")
        else:
            return None
    return tuple(out)


def _match(body: Mapping[str, Any], lookup: _SetLookup) -> List[Cond]:
    op, left = body.get("op", "=="), body.get("left")
    negate = op == "!="
    if op not in ("==", "!=", "in"):
        return [Cond("unknown", why=f"comparison {op!r}")]
    values = _values(body.get("right"), lookup)
    if values is None:
        return [Cond("unknown", why="a named set that is not listed")]
    if not isinstance(left, dict) or len(left) != 1:
        return [Cond("unknown", why="a match on an expression")]
    ((kind, spec),) = left.items()
    spec = spec if isinstance(spec, dict) else {}
    if kind == "meta":
        return [_meta(str(spec.get("key")), values, negate)]
    if kind == "ct" and spec.get("key") == "state":
        return [Cond("ctstate", tuple(str(v) for v in values), negate=negate)]
    if kind == "payload":
        return _payload(str(spec.get("protocol")), str(spec.get("field")), values, negate)
    if kind == "fib" and spec.get("result") == "type" and spec.get("flags") == ["daddr"]:
        return [Cond("const", ("true" if "local" in values else "false",), negate=negate)]
    return [Cond("unknown", why=f"a match on {kind} {spec.get('key') or spec.get('field') or ''}".strip())]


def _meta(key: str, values: List[Any], negate: bool) -> Cond:
    if key in ("iifname", "iif"):
        if values == ["lo"]:
            return Cond("iface_lo", negate=negate)
        return Cond("source", why=f"input interface {values}")
    if key == "l4proto":
        return Cond("protocol", tuple(str(v) for v in values), negate=negate)
    if key == "nfproto":
        return Cond("family", tuple(str(v) for v in values), negate=negate)
    if key == "pkttype":
        return Cond("const", ("true" if "host" in values else "false",), negate=negate)
    if key in ("iiftype", "iifgroup", "iifkind"):
        return Cond("source", why=f"meta {key}")
    return Cond("unknown", why=f"meta {key}")


def _payload(protocol: str, field: str, values: List[Any], negate: bool) -> List[Cond]:
    conds: List[Cond] = []
    if protocol in _L3:
        conds.append(Cond("family", (_L3[protocol],)))  # the family is implied, even for !=
        if field == "saddr":
            conds.append(Cond("source", why=f"{protocol} saddr"))
        elif field == "daddr":
            addresses = _addresses(values)
            conds.append(Cond("daddr", addresses, negate=negate) if addresses else Cond("some"))
        elif field in ("protocol", "nexthdr"):
            conds.append(Cond("protocol", tuple(str(v) for v in values), negate=negate))
        else:
            conds.append(Cond("unknown", why=f"{protocol} {field}"))
        return conds
    if protocol in _L4 or protocol == "th":
        if protocol != "th":
            conds.append(Cond("protocol", (protocol,)))
        if field == "dport":
            ranges = _ranges(values)
            conds.append(Cond("dport", ranges=ranges, negate=negate) if ranges else Cond("unknown", why="dport"))
        elif field == "sport":
            conds.append(Cond("source", why=f"{protocol} sport"))
        else:
            conds.append(Cond("unknown", why=f"{protocol} {field}"))
        return conds
    if protocol in ("ether", "vlan", "arp"):
        return [Cond("source", why=f"{protocol} {field}")]
    return [Cond("unknown", why=f"{protocol} {field}")]


def _vmap(
    body: Mapping[str, Any], lookup: _SetLookup, rule: Mapping[str, Any]
) -> Tuple[Tuple[Tuple[Cond, ...], str, str], ...]:
    entries = _values(body.get("data"), lookup)
    out = []
    for entry in entries or []:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], dict) and len(entry[1]) == 1):
            return ((((Cond("unknown", why="a verdict map"),)), "unknown", ""),)
        ((verdict, arg),) = entry[1].items()
        conds = tuple(_match({"op": "==", "left": body.get("key"), "right": entry[0]}, lookup))
        if verdict in ("jump", "goto") and isinstance(arg, dict):
            out.append((conds, verdict, _key(rule, arg.get("target"))))
        elif verdict in _SIMPLE_VERDICTS:
            out.append((conds, verdict, ""))
        else:
            out.append((conds, "none" if verdict == "continue" else "unknown", ""))
    if entries is None:
        return ((((Cond("unknown", why="a verdict map that is not listed"),)), "unknown", ""),)
    return tuple(out)
