"""The firewall front-ends' own files: ufw's switch and default policy, firewalld's default zone.

Both files are ``KEY=value`` lines with ``#`` comments and optional quotes (ufw-framework(8),
firewalld.conf(5)).  Whether a front-end's rules are *loaded* is read from the ruleset itself.
"""

from __future__ import annotations

from typing import Dict


def parse_key_values(text: str) -> Dict[str, str]:
    """``KEY=value`` pairs; later lines win, quotes are removed, other lines are ignored."""
    out: Dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.split(" #", 1)[0].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if key.strip().replace("_", "").isalnum():
            out[key.strip()] = value
    return out
