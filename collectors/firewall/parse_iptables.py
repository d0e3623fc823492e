"""Parse ``iptables-save`` / ``ip6tables-save`` output (legacy or nf_tables variant) into a :class:`Ruleset`.

Only the ``filter`` table is read: its ``INPUT`` chain (policy from the ``:INPUT DROP [p:b]``
line) and every user chain it jumps to.  Each ``-A`` line becomes a rule: options this
module knows become conditions (iptables(8), iptables-extensions(8)); any other option
becomes an ``unknown`` condition naming it, so the reading stays conservative.
"""

from __future__ import annotations

import shlex
from typing import Collection, List, Optional, Tuple

from collectors.firewall.ruleset import BaseChain, Cond, Rule, Ruleset

_TERMINAL = {"ACCEPT": "accept", "DROP": "drop", "REJECT": "reject", "RETURN": "return"}
# Targets that do something and let the packet go on (iptables-extensions(8)).
_NON_TERMINAL = {
    "LOG",
    "NFLOG",
    "ULOG",
    "TRACE",
    "CT",
    "MARK",
    "CONNMARK",
    "AUDIT",
    "CLASSIFY",
    "DSCP",
    "TOS",
    "TCPMSS",
}
_SOURCE_OPTIONS = {"-s", "--source", "--sport", "--source-port", "--sports", "--src-range", "--mac-source"}
_IGNORED = {"--comment", "--limit-burst", "--hashlimit-burst", "--hashlimit-mode", "--hashlimit-name", "--log-prefix"}


class IptablesError(ValueError):
    """The text is not iptables-save output."""


def parse_iptables(text: str, family: str, source: str = "iptables") -> Ruleset:
    """The ``filter`` table's input side for ``family`` (ipv4 or ipv6); raises :class:`IptablesError`."""
    ruleset = Ruleset(source)
    table: Optional[str] = None
    policies = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            table = line[1:]
            continue
        if line == "COMMIT":
            table = None
            continue
        if table is None:
            raise IptablesError(f"line {number} is outside a table: {line[:80]!r}")
        if table != "filter":
            continue
        if line.startswith(":"):
            parts = line[1:].split()
            if len(parts) < 2:
                raise IptablesError(f"line {number} is not a chain line: {line[:80]!r}")
            ruleset.chains.setdefault(parts[0], [])
            policies[parts[0]] = parts[1]
            continue
        try:
            words = shlex.split(line)
        except ValueError as err:
            raise IptablesError(f"line {number}: {err}") from err
        if len(words) < 2 or words[0] != "-A":
            raise IptablesError(f"line {number} is not a rule: {line[:80]!r}")
        ruleset.chains.setdefault(words[1], []).append(
            _rule(words[2:], f"{source} filter {words[1]}: {line}", ruleset.chains)
        )
    if "INPUT" in policies:
        policy = "drop" if policies["INPUT"] == "DROP" else "accept"
        ruleset.bases.append(BaseChain("INPUT", (family,), "input", policy))
    return ruleset


def _ports(text: str) -> Optional[Tuple[Tuple[int, int], ...]]:
    out = []
    for part in text.split(","):
        low, _, high = part.partition(":")
        if not low.isdigit() or (high and not high.isdigit()):
            return None  # a service name: not decided here
        out.append((int(low), int(high) if high else int(low)))
    return tuple(out)


def _rule(words: List[str], where: str, chains: Collection[str]) -> Rule:  # noqa: C901  one pass, a branch per option
    conds: List[Cond] = []
    verdict, target, why = "none", "", ""
    negate = False
    i = 0
    while i < len(words):
        word = words[i]
        value = words[i + 1] if i + 1 < len(words) else ""
        if word == "!":
            negate = True
            i += 1
            continue
        if value == "!":  # the old form: "-s ! 10.0.0.0/8"
            negate, value = True, words[i + 2] if i + 2 < len(words) else ""
            i += 1
        step = 2
        if word in ("-j", "--jump", "-g", "--goto"):
            if value in _TERMINAL:
                verdict = _TERMINAL[value]
            elif value in _NON_TERMINAL:
                verdict = "none"
            elif value in chains:  # iptables-save declares every chain of a table before its rules
                verdict, target = ("jump" if word in ("-j", "--jump") else "goto"), value
            else:
                verdict, why = "unknown", f"target {value}"  # QUEUE, NFQUEUE, TPROXY ...
            step = _skip_target_options(words, i + 2) - i
        elif word in ("-m", "--match"):
            pass  # the module's options follow and are read one by one
        elif word in ("-p", "--protocol"):
            conds.append(Cond("protocol", (value.lower(),), negate=negate))
        elif word in ("-i", "--in-interface"):
            conds.append(Cond("iface_lo", negate=negate) if value == "lo" else Cond("source", why=f"interface {value}"))
        elif word in ("-d", "--destination"):
            conds.append(Cond("daddr", tuple(value.split(",")), negate=negate))
        elif word in ("--dport", "--destination-port", "--dports", "--destination-ports"):
            ranges = _ports(value)
            conds.append(
                Cond("dport", ranges=ranges, negate=negate) if ranges else Cond("unknown", why=f"{word} {value}")
            )
        elif word in ("--ctstate", "--state"):
            conds.append(Cond("ctstate", tuple(v.lower() for v in value.split(",")), negate=negate))
        elif word == "--dst-type":
            conds.append(Cond("const", ("true" if value == "LOCAL" else "false",), negate=negate))
        elif word == "--match-set":
            direction = words[i + 2] if i + 2 < len(words) else ""
            conds.append(Cond("source", why=f"ipset {value}") if direction.startswith("src") else Cond("some"))
            step = 3
        elif word in _SOURCE_OPTIONS or word == "--src-type":
            conds.append(Cond("source", why=f"{word} {value}"))
        elif word in ("--limit", "--hashlimit", "--hashlimit-upto", "--dst-range"):
            conds.append(Cond("some"))
        elif word in ("--icmp-type", "--icmpv6-type") or word in _IGNORED:
            pass
        elif word.startswith("-"):
            conds.append(Cond("unknown", why=f"option {word}"))
            step = 1 if value.startswith("-") or not value else 2
        else:
            step = 1  # a module name after -m, or a word an option left
        negate = False
        i += step
    unknown = [c.why for c in conds if c.kind == "unknown"]
    return Rule(tuple(conds), verdict, where, target, why=why or (unknown[0] if unknown else ""))


def _skip_target_options(words: List[str], i: int) -> int:
    """Past a target's own options (``--reject-with x``, ``--log-prefix "y"``): they decide nothing here."""
    while i < len(words) and words[i].startswith("--") and words[i] not in ("--match",):
        i += 2
    return i
