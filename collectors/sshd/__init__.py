"""sshd collector (M05, M07): sshd's effective configuration, from ``sshd -T`` or the files.

Modules: ``settings`` (schema, watched paths), ``parse_sshd_t`` and ``parse_config`` (pure
parsers), ``crypto`` (the documented modern algorithm set), ``facts`` (pure: observed facts
from a configuration), ``collect`` (I/O through the Context).
"""

from __future__ import annotations

from collectors.base import CollectorSpec
from collectors.sshd.collect import collect, summary
from collectors.sshd.settings import SETTINGS, watch_paths

SPEC = CollectorSpec(
    name="sshd",
    version="1.0",
    controls=("M05", "M07"),
    collect=collect,
    settings=SETTINGS,
    summary=summary,
    watch_paths=watch_paths,
)
