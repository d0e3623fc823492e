"""Service-access collector (M11): open remote-service entrances and vendor accounts.

Modules: ``settings`` (SETTINGS), ``collect`` (collect, summary: the socket table and running
processes through psutil, the account files through the Context), ``parse_entrances`` (pure:
which sockets and processes are entrances, whether an account is locked).
"""

from __future__ import annotations

from collectors.base import CollectorSpec
from collectors.service_access.collect import collect, summary
from collectors.service_access.settings import SETTINGS

SPEC = CollectorSpec(
    name="service_access",
    version="1.0",
    controls=("M11",),
    collect=collect,
    settings=SETTINGS,
    summary=summary,
)
