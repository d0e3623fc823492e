"""Logging collector (M06): auditd running with its rules loaded, journald's storage persistent,
logs forwarded off the host and to where, and how long rotated logs are kept.

Modules: ``settings`` (the schema and watched files), ``collect`` (auditctl and the configuration
files, through the Context), and the pure parsers ``parse_audit``, ``parse_journald``,
``parse_rsyslog``, ``parse_syslog_ng`` and ``parse_logrotate``.
"""

from __future__ import annotations

from collectors.base import CollectorSpec
from collectors.logging.collect import collect, summary
from collectors.logging.settings import SETTINGS, watch_paths

SPEC = CollectorSpec(
    name="logging",
    version="1.0",
    controls=("M06",),
    collect=collect,
    settings=SETTINGS,
    summary=summary,
    watch_paths=watch_paths,
)
