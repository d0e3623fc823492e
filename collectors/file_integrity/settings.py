"""Settings of the file_integrity collector, and the paths the daemon watches for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from collectors.settings import Field, Schema

DEFAULT_PATHS = [
    "/etc/passwd",
    "/etc/shadow",
    "/etc/group",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/ssh/sshd_config",
    "/etc/ssh/sshd_config.d",
    "/etc/pam.d",
    "/etc/security",
    "/etc/crontab",
    "/etc/cron.d",
    "/etc/cron.hourly",
    "/etc/cron.daily",
    "/etc/cron.weekly",
    "/etc/cron.monthly",
    "/var/spool/cron/crontabs",
    "/etc/tillsyn",
]

SETTINGS: Schema = {
    "paths": Field(list, DEFAULT_PATHS, "critical files and directories (a directory: every file below it)"),
    "max_files": Field(int, 5000, "files hashed at most; more are a gap", minimum=1),
    "max_file_bytes": Field(int, 16 * 1024 * 1024, "a larger file is compared by size and time, not hashed", minimum=1),
    "max_listed": Field(int, 20, "changes listed one by one in a report; more are summarised", minimum=1),
    "audit_log": Field(str, "/var/log/audit/audit.log", "the kernel audit log, for who changed a file"),
    "audit_max_bytes": Field(int, 4 * 1024 * 1024, "read at most this much of the end of the audit log", minimum=1),
}


def watch_paths(settings: Mapping[str, Any], state_dir: Optional[Path] = None) -> Sequence[str]:
    """The configured paths: the daemon watches each file's directory and each directory itself."""
    return [str(p) for p in settings.get("paths", DEFAULT_PATHS)]
