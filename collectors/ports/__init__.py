"""Ports collector (M07, M11): every listening TCP and bound UDP socket, its exposure and owner.

Facts only: address, port, whether it is reachable beyond loopback, which process
(and systemd unit) holds it, and tags for known plaintext, remote-service and
database ports.  The policy decides what is allowed.

Modules: ``settings`` (keys), ``collect`` (the socket table and owners assembled into facts),
``read_psutil`` (psutil's socket table, a process's owner and cgroup), pure ``parse_sockets``
(listening/bound sockets from psutil entries), ``parse_cgroup`` (the systemd unit of a process),
``exposure`` (where an address is reachable from), ``services`` (known ports and process
names), ``report`` (records, counts and gap sentences), and the records in ``model``.
"""

from __future__ import annotations

from collectors.base import CollectorSpec
from collectors.ports.collect import collect_node, summary
from collectors.ports.settings import SETTINGS

SPEC = CollectorSpec(
    name="ports",
    version="2.0",
    controls=("M07", "M11"),
    collect=collect_node,
    settings=SETTINGS,
    summary=summary,
)
