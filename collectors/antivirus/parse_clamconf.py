"""Parse ClamAV's ``clamd.conf`` and ``freshclam.conf`` into typed records (pure, no I/O).

Format (clamd.conf(5), freshclam.conf(5)): one ``Option value`` per line, ``#``
starts a comment, options may repeat (``TCPAddr``, ``DatabaseMirror``,
``OnAccessIncludePath``), and a line ``Example`` marks an unedited sample that the
daemon refuses to use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

DEFAULT_DATABASE_DIR = "/var/lib/clamav"
# freshclam.conf(5): "Checks: number of database checks per day ... Default: 12".
DEFAULT_CHECKS = 12


def parse_options(text: str) -> Dict[str, List[str]]:
    """Every option with all its values, in file order; option names as written."""
    options: Dict[str, List[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, value = line.partition(" ")
        if "\t" in name:
            name, _, rest = name.partition("\t")
            value = f"{rest} {value}".strip()
        options.setdefault(name, []).append(value.strip())
    return options


def _last(options: Dict[str, List[str]], name: str) -> Optional[str]:
    values = options.get(name)
    return values[-1] if values else None


@dataclass(frozen=True)
class ClamdConfig:
    """The parts of clamd.conf that say where clamd listens, what it loads and what it watches."""

    example: bool
    local_socket: Optional[str]
    tcp_socket: Optional[int]
    tcp_addrs: Tuple[str, ...]
    database_directory: str
    on_access_include_paths: Tuple[str, ...]
    on_access_mount_paths: Tuple[str, ...]


def parse_clamd_conf(text: str) -> ClamdConfig:
    """Read a clamd.conf; raises ``ValueError`` when ``TCPSocket`` is not a port number."""
    options = parse_options(text)
    port_text = _last(options, "TCPSocket")
    port: Optional[int] = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"TCPSocket is not a port number: {port_text!r}")
        port = int(port_text)
    return ClamdConfig(
        example="Example" in options,
        local_socket=_last(options, "LocalSocket"),
        tcp_socket=port,
        tcp_addrs=tuple(options.get("TCPAddr", ())),
        database_directory=_last(options, "DatabaseDirectory") or DEFAULT_DATABASE_DIR,
        on_access_include_paths=tuple(options.get("OnAccessIncludePath", ())),
        on_access_mount_paths=tuple(options.get("OnAccessMountPath", ())),
    )


@dataclass(frozen=True)
class FreshclamConfig:
    """The parts of freshclam.conf that say whether and from where signatures are updated."""

    example: bool
    checks: int
    database_mirrors: Tuple[str, ...]
    private_mirrors: Tuple[str, ...]
    database_directory: str
    notify_clamd: Optional[str]


def parse_freshclam_conf(text: str) -> FreshclamConfig:
    """Read a freshclam.conf; raises ``ValueError`` when ``Checks`` is not a number."""
    options = parse_options(text)
    checks_text = _last(options, "Checks")
    if checks_text is None:
        checks = DEFAULT_CHECKS
    elif checks_text.isdigit():
        checks = int(checks_text)
    else:
        raise ValueError(f"Checks is not a number: {checks_text!r}")
    return FreshclamConfig(
        example="Example" in options,
        checks=checks,
        database_mirrors=tuple(options.get("DatabaseMirror", ())),
        private_mirrors=tuple(options.get("PrivateMirror", ())),
        database_directory=_last(options, "DatabaseDirectory") or DEFAULT_DATABASE_DIR,
        notify_clamd=_last(options, "NotifyClamd"),
    )
