"""Settings of the power collector (``collectors.power.*`` in agent.yaml) and the files it watches."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence

from collectors.settings import Field, Schema

NUT_SERVER: Schema = {
    "host": Field(str, "127.0.0.1", "upsd host name or address"),
    "port": Field(int, 3493, "upsd TCP port (IANA 3493)", minimum=1),
    "username": Field((str, type(None)), None, "upsd.users user for USERNAME (optional; LIST needs none)"),
    "password_file": Field(
        (str, type(None)), None, "file whose first line is that user's password (read below the agent's root)"
    ),
}

APCUPSD_SERVER: Schema = {
    "host": Field(str, "127.0.0.1", "apcupsd NIS host name or address"),
    "port": Field(int, 3551, "apcupsd NIS TCP port (NISPORT, IANA 3551)", minimum=1),
}

SETTINGS: Schema = {
    "nut_servers": Field(
        list,
        [{"host": "127.0.0.1", "port": 3493, "username": None, "password_file": None}],
        "NUT upsd servers to ask for every UPS they serve",
        items=NUT_SERVER,
    ),
    "nut_follow_upsmon": Field(bool, True, "also ask the upsd servers named in upsmon.conf MONITOR lines"),
    "apcupsd_servers": Field(
        list,
        [{"host": "127.0.0.1", "port": 3551}],
        "apcupsd NIS servers to ask for status",
        items=APCUPSD_SERVER,
    ),
    "server_timeout": Field(float, 2.0, "seconds for each server's whole exchange", minimum=0.1),
    "power_supply": Field(bool, True, "read /sys/class/power_supply for host batteries"),
    "nut_config_dir": Field(str, "/etc/nut", "directory with nut.conf and upsmon.conf"),
    "apcupsd_config": Field(str, "/etc/apcupsd/apcupsd.conf", "apcupsd configuration file"),
    "apcupsd_default": Field(str, "/etc/default/apcupsd", "Debian's apcupsd defaults file (ISCONFIGURED)"),
}


def watch_paths(settings: Mapping[str, Any], state_dir: Optional[Path] = None) -> Sequence[str]:
    """Configuration whose change alters the shutdown-client facts."""
    nut_dir = str(settings.get("nut_config_dir", "/etc/nut")).rstrip("/")
    paths: List[str] = [f"{nut_dir}/nut.conf", f"{nut_dir}/upsmon.conf"]
    paths.append(str(settings.get("apcupsd_config", "/etc/apcupsd/apcupsd.conf")))
    paths.append(str(settings.get("apcupsd_default", "/etc/default/apcupsd")))
    return paths
