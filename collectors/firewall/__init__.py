"""Firewall collector (M07): is a packet filter active, and which listening sockets can anyone reach?

Modules: ``settings`` (SETTINGS), ``collect`` (collect, summary: nft, iptables-legacy-save, the
front-ends' files and the socket table, through the Context), ``parse_nft`` and ``parse_iptables``
(pure parsers into one ruleset model), ``ruleset`` (that model and the conservative reading of it),
``parse_frontends`` (ufw's and firewalld's KEY=value files).
"""

from __future__ import annotations

from collectors.base import CollectorSpec
from collectors.firewall.collect import collect, summary
from collectors.firewall.settings import SETTINGS

SPEC = CollectorSpec(
    name="firewall",
    version="1.0",
    controls=("M07",),
    collect=collect,
    settings=SETTINGS,
    summary=summary,
)
