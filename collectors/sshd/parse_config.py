"""Parse sshd_config text (sshd_config(5)) into directives, and fold directives into settings.

Pure: the I/O module reads each file and expands ``Include`` (it needs the file system);
:func:`directives` splits one file, :func:`fold` applies sshd's rules to the expanded list:
the first value of a keyword wins, list keywords (``AllowUsers``, ``ListenAddress``, ``Port`` …)
accumulate, and a ``Match`` line starts a block that lasts to the next ``Match`` or the end.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Tuple

# Keywords whose lines add up instead of the first one winning (sshd's servconf.c).
ACCUMULATE = frozenset(
    {"allowusers", "denyusers", "allowgroups", "denygroups", "listenaddress", "port", "hostkey", "acceptenv"}
)
ALIASES = {"challengeresponseauthentication": "kbdinteractiveauthentication"}


@dataclass(frozen=True)
class Directive:
    keyword: str
    """Lower case, aliases resolved."""
    args: Tuple[str, ...]
    source: str
    """``file:line``"""


@dataclass
class Block:
    """A ``Match`` block: its criteria as written and the settings it changes."""

    criteria: str
    source: str
    values: Dict[str, List[str]] = field(default_factory=dict)


@dataclass
class Folded:
    values: Dict[str, List[str]] = field(default_factory=dict)
    matches: List[Block] = field(default_factory=list)


def directives(text: str, name: str) -> Tuple[List[Directive], List[str]]:
    """The directives of one file, and a problem for each line that cannot be read."""
    found: List[Directive] = []
    problems: List[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{name}:{number}"
        keyword, sep, rest = _split_keyword(line)
        try:
            args = tuple(shlex.split(rest, comments=True)) if sep else ()
        except ValueError as err:  # an unclosed quote
            problems.append(f"{where}: {err}")
            continue
        if not keyword.replace("_", "").isalnum():
            problems.append(f"{where}: not a keyword: {keyword[:40]!r}")
            continue
        lowered = keyword.lower()
        found.append(Directive(ALIASES.get(lowered, lowered), args, where))
    return found, problems


def _split_keyword(line: str) -> Tuple[str, bool, str]:
    """``Keyword value`` or ``Keyword=value`` (both allowed by sshd_config(5))."""
    for index, char in enumerate(line):
        if char.isspace() or char == "=":
            rest = line[index + 1 :].lstrip().lstrip("=").lstrip()
            return line[:index], True, rest
    return line, False, ""


def fold(items: Iterable[Directive]) -> Folded:
    """Global settings (first wins, lists accumulate) and the Match blocks in order."""
    result = Folded()
    target = result.values
    for item in items:
        if item.keyword == "match":
            block = Block(" ".join(item.args), item.source)
            result.matches.append(block)
            target = block.values
            continue
        if item.keyword == "include":
            continue  # expanded by the caller
        value = " ".join(item.args)
        if item.keyword in ACCUMULATE:
            target.setdefault(item.keyword, []).extend(item.args if item.keyword != "listenaddress" else [value])
        elif item.keyword not in target:
            target[item.keyword] = [value]
    return result
