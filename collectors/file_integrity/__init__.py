"""file_integrity collector (M09): changes to critical files, with hash, owner, mode, time and actor.

Modules: ``settings`` (schema and watched paths), ``read_files`` (the files now, through the Context),
``store_baseline`` (the state kept between runs), ``compare``, ``parse_audit`` and ``report`` (pure),
``collect`` (the run).
"""

from __future__ import annotations

from collectors.base import CollectorSpec
from collectors.file_integrity.collect import collect, summary
from collectors.file_integrity.settings import SETTINGS, watch_paths

SPEC = CollectorSpec(
    name="file_integrity",
    version="1.0",
    controls=("M09",),
    collect=collect,
    settings=SETTINGS,
    summary=summary,
    watch_paths=watch_paths,
    watch_below=True,  # it hashes every file below a directory (/etc/security/limits.d too)
)
