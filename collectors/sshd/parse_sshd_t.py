"""Parse ``sshd -T`` output: one ``keyword value`` per line, keywords in lower case.

Keywords that may repeat (``listenaddress``, ``allowusers``, ``hostkey``, ``port``) keep every
value in order.  A line that is not ``keyword value`` is counted, never raised: the caller
says the output was damaged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List

_KEYWORD = re.compile(r"^[a-z][a-z0-9]*$")


@dataclass
class Effective:
    """The effective configuration: lower-case keyword -> its values, in order."""

    values: Dict[str, List[str]] = field(default_factory=dict)
    bad_lines: int = 0

    def first(self, keyword: str) -> str:
        found = self.values.get(keyword)
        return found[0] if found else ""


def parse_sshd_t(text: str) -> Effective:
    result = Effective()
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        keyword, _, value = line.partition(" ")
        if not _KEYWORD.match(keyword):
            result.bad_lines += 1
            continue
        result.values.setdefault(keyword, []).append(value.strip())
    return result
