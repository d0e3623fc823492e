"""Backup evidence (control M04): for each configured backup, when it last succeeded, where the
repository is and whether that is off this node, whether it is encrypted, and the last restore test.

Backups are declared in ``collectors.backup.backups`` of agent.yaml; with none declared the
collector costs nothing and reports "not present".

Modules: ``settings`` (keys, the configured backups, watched files), ``collect`` (every backup
in turn, and the summary), ``read_backup`` (runs restic/borg/veeamconfig or reads a marker for
one backup), pure parsers ``parse_restic``, ``parse_borg``, ``parse_veeam``, ``parse_markers``,
``parse_times``, and ``location`` (is the repository off this node; pure).
"""

from __future__ import annotations

from collectors.backup.collect import collect, summary
from collectors.backup.settings import SETTINGS, watch_paths
from collectors.base import CollectorSpec

SPEC = CollectorSpec(
    name="backup",
    version="1.1",
    controls=("M04",),
    collect=collect,
    settings=SETTINGS,
    summary=summary,
    watch_paths=watch_paths,
    interval=900,
    timeout=120.0,
)
