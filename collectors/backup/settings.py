"""The backup collector's settings: a list of configured backups plus tool paths.

Credentials never appear in the settings: only the *file* holding a password, which the tool
reads itself (``RESTIC_PASSWORD_FILE``, ``BORG_PASSCOMMAND="cat FILE"``).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from collectors.settings import REQUIRED, Field, Schema

TYPES = ("restic", "borg", "veeam", "marker")
DEFAULT_RESTORE_TEST_DIR = "/var/lib/tillsyn/restore-tests"
# Environment names that hold secrets themselves; they must come from files instead.
_SECRET_WORDS = ("PASSWORD", "PASSPHRASE", "SECRET", "TOKEN")

BACKUP_ITEM: Schema = {
    "name": Field(str, REQUIRED, "a short name for this backup, unique on the node (e.g. 'db')"),
    "type": Field(str, REQUIRED, "restic, borg, veeam or marker", choices=TYPES),
    "repository": Field(
        (str, type(None)), None, "restic/borg repository (path or URL); for veeam/marker where the backup goes"
    ),
    "password_file": Field((str, type(None)), None, "file holding the repository password (restic, borg)"),
    "host": Field((str, type(None)), None, "restic: only snapshots of this hostname"),
    "job": Field((str, type(None)), None, "veeam: only sessions of this job name"),
    "marker": Field((str, type(None)), None, "marker: the file the backup job writes when it ends"),
    "restore_test": Field((str, type(None)), None, "restore-test record; default <restore_test_dir>/<name>.json"),
    "timeout": Field(float, 20.0, "seconds before the tool is stopped", minimum=1),
    "env": Field(dict, {}, "extra non-secret environment for the tool (e.g. BORG_RSH, AWS_PROFILE)"),
}

SETTINGS: Schema = {
    "backups": Field(list, [], "the backups this node is expected to have", items=BACKUP_ITEM),
    "restic_binary": Field(str, "restic", "restic executable"),
    "borg_binary": Field(str, "borg", "borg executable"),
    "veeamconfig_binary": Field(str, "veeamconfig", "Veeam Agent for Linux CLI"),
    "borg_base_dir": Field(
        (str, type(None)),
        None,
        "BORG_BASE_DIR for borg's cache and security files (default: borg/ in the agent's state directory, "
        "--state-dir or $STATE_DIRECTORY)",
    ),
    "restore_test_dir": Field(
        (str, type(None)),
        None,
        "where restore-test jobs write <name>.json (default: restore-tests/ in the agent's state directory)",
    ),
}


@dataclass(frozen=True)
class Backup:
    """One configured backup, validated."""

    name: str
    type: str
    repository: Optional[str]
    password_file: Optional[str]
    host: Optional[str]
    job: Optional[str]
    marker: Optional[str]
    restore_test: str
    timeout: float
    env: Dict[str, str]


def restore_test_dir(settings: Mapping[str, Any], state_dir: Optional[Path] = None) -> str:
    """``restore_test_dir``, else ``restore-tests`` in the agent's state directory (``--state-dir``),
    else the packaged state directory's."""
    configured = settings.get("restore_test_dir")
    if configured:
        return str(configured)
    return str(state_dir / "restore-tests") if state_dir is not None else DEFAULT_RESTORE_TEST_DIR


def backups(settings: Mapping[str, Any], state_dir: Optional[Path] = None) -> List[Backup]:
    """The configured backups with defaults resolved (settings already validated by the schema)."""
    result = []
    for item in settings.get("backups") or []:
        folder = restore_test_dir(settings, state_dir)
        restore = item.get("restore_test") or posixpath.join(folder, f"{item['name']}.json")
        result.append(
            Backup(
                name=item["name"],
                type=item["type"],
                repository=item.get("repository"),
                password_file=item.get("password_file"),
                host=item.get("host"),
                job=item.get("job"),
                marker=item.get("marker"),
                restore_test=restore,
                timeout=float(item.get("timeout") or 20.0),
                env={str(k): str(v) for k, v in (item.get("env") or {}).items()},
            )
        )
    return result


def config_problem(backup: Backup) -> Optional[str]:
    """What is missing or unsafe in one backup's settings, or None."""
    needs = {"restic": ("repository", "password_file"), "borg": ("repository",), "marker": ("marker",)}
    for key in needs.get(backup.type, ()):
        if not getattr(backup, key):
            return f"a {backup.type} backup needs '{key}' in agent.yaml"
    for key in backup.env:
        if any(word in key.upper() for word in _SECRET_WORDS):
            return f"env {key} looks like a secret: give secrets through files (password_file), not agent.yaml"
    return None


def watch_paths(settings: Mapping[str, Any], state_dir: Optional[Path] = None) -> List[str]:
    """Marker files and restore-test records (below ``state_dir`` by default, as the collector reads
    them): a change there is news worth collecting at once."""
    paths: List[str] = []
    for backup in backups(settings, state_dir):
        if backup.marker:
            paths.append(backup.marker)
        paths.append(backup.restore_test)
    return paths
