"""Remove secrets from text before it leaves the collector (error messages, reasons)."""

from __future__ import annotations

import re

_PATTERNS = [
    # scheme://user:password@host -> scheme://user:***@host
    (re.compile(r"(?P<pre>[a-zA-Z][\w+.-]*://[^/\s:@]+:)[^@\s/]+@"), r"\g<pre>***@"),
    # password=..., passphrase: ..., token=..., secret=...
    (
        re.compile(r"(?i)(?P<key>pass(word|phrase)?|token|secret|api[_-]?key)(?P<sep>\s*[=:]\s*)\S+"),
        r"\g<key>\g<sep>***",
    ),
]


def scrub(text: str) -> str:
    """``text`` with credentials in URLs and ``key=value`` pairs masked."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
