"""Settings of the antivirus collector (``collectors.antivirus.*`` in agent.yaml), Debian defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from collectors.settings import Field, Schema

UNIT_DIRS = ["/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"]

SETTINGS: Schema = {
    "clamd_conf": Field(str, "/etc/clamav/clamd.conf", "clamd configuration (socket, database directory, on-access)"),
    "freshclam_conf": Field(str, "/etc/clamav/freshclam.conf", "freshclam (signature updater) configuration"),
    "clamd_socket": Field(str, "", "clamd unix socket; empty: LocalSocket from clamd_conf"),
    "clamd_tcp": Field(str, "", "clamd TCP address host:port; empty: TCPSocket/TCPAddr from clamd_conf"),
    "database_dir": Field(str, "", "signature database directory; empty: DatabaseDirectory from clamd_conf"),
    "socket_timeout": Field(float, 2.0, "seconds to wait for clamd to answer", minimum=0.1),
    "mdatp_command": Field(str, "/usr/bin/mdatp", "Microsoft Defender for Endpoint command line tool"),
    "mdatp_timeout": Field(float, 5.0, "seconds to wait for 'mdatp health'", minimum=0.5),
    "unit_dirs": Field(list, list(UNIT_DIRS), "directories searched for the products' systemd unit files"),
}


def watch_paths(settings: Mapping[str, Any], state_dir: Optional[Path] = None) -> Sequence[str]:
    """The ClamAV configuration and the daily database (rewritten by every update)."""
    db_dir = str(settings.get("database_dir") or "/var/lib/clamav").rstrip("/")
    return (
        str(settings.get("clamd_conf", "/etc/clamav/clamd.conf")),
        str(settings.get("freshclam_conf", "/etc/clamav/freshclam.conf")),
        f"{db_dir}/daily.cld",
        f"{db_dir}/daily.cvd",
    )
