"""Settings of the accounts collector."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from collectors.settings import Field, Schema

SETTINGS: Schema = {
    "dormant_days": Field(int, 90, "an account not logged in for this many days is dormant", minimum=1),
    "admin_groups": Field(list, ["sudo", "wheel", "admin"], "groups whose members may become root"),
    "sudoers": Field(str, "/etc/sudoers", "the main sudoers file (its @includedir/#includedir are followed)"),
    "lastlog": Field(str, "/var/log/lastlog", "lastlog(8)'s binary file"),
    "wtmp": Field(str, "/var/log/wtmp", "the login records (utmp format), read from the end"),
    "wtmp_max_bytes": Field(int, 8 * 1024 * 1024, "read at most this much of the end of wtmp", minimum=384),
    "authorized_keys": Field(
        list,
        [".ssh/authorized_keys", ".ssh/authorized_keys2"],
        "files below each home directory with SSH keys (sshd's AuthorizedKeysFile default)",
    ),
}


def watch_paths(settings: Mapping[str, Any], state_dir: Optional[Path] = None) -> Sequence[str]:
    """Account databases and sudoers: a change re-reads the accounts at once."""
    sudoers = str(settings.get("sudoers", "/etc/sudoers"))
    return ["/etc/passwd", "/etc/shadow", "/etc/group", sudoers, sudoers + ".d"]
