"""Table-driven tests of the pure parsers over captured, published and malformed samples."""

from __future__ import annotations

import os
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from collectors.antivirus.parse_clamconf import parse_clamd_conf, parse_freshclam_conf
from collectors.antivirus.parse_clamd import parse_pong, parse_version
from collectors.antivirus.parse_cvd import parse_cvd_header
from collectors.antivirus.parse_mdatp import parse_mdatp_health
from tests.conftest import FIXTURES, require_tool

FIX = FIXTURES / "antivirus"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "clamd-conf_debian-12_clamav-daemon-1.4.6.conf",
            {
                "example": False,
                "local_socket": "/var/run/clamav/clamd.ctl",
                "tcp_socket": None,
                "tcp_addrs": (),
                "database_directory": "/var/lib/clamav",
                "on_access_include_paths": (),
                "on_access_mount_paths": (),
            },
        ),
        (
            "clamd-conf_reconstructed_tcp-onaccess.conf",
            {
                "example": False,
                "local_socket": None,
                "tcp_socket": 3310,
                "tcp_addrs": ("127.0.0.1",),
                "database_directory": "/srv/clamav/db",
                "on_access_include_paths": ("/home", "/srv"),
                "on_access_mount_paths": ("/var/www",),
            },
        ),
        # Absent: an empty file gives clamd's documented defaults (no socket, /var/lib/clamav).
        (
            None,
            {
                "example": False,
                "local_socket": None,
                "tcp_socket": None,
                "tcp_addrs": (),
                "database_directory": "/var/lib/clamav",
                "on_access_include_paths": (),
                "on_access_mount_paths": (),
            },
        ),
    ],
)
def test_parse_clamd_conf(name: Optional[str], expected: Dict[str, Any]) -> None:
    text = (FIX / name).read_text() if name else ""
    conf = parse_clamd_conf(text)
    assert {k: getattr(conf, k) for k in expected} == expected


def test_parse_clamd_conf_malformed_port_names_the_option() -> None:
    with pytest.raises(ValueError, match="TCPSocket is not a port number: 'clamd'"):
        parse_clamd_conf((FIX / "clamd-conf_malformed_tcpsocket.conf").read_text())


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "freshclam-conf_debian-12_clamav-freshclam-1.4.6.conf",
            {
                "example": False,
                "checks": 24,
                "database_mirrors": ("db.local.clamav.net", "database.clamav.net"),
                "private_mirrors": (),
                "notify_clamd": "/etc/clamav/clamd.conf",
            },
        ),
        (
            "freshclam-conf_reconstructed_example-private-mirror.conf",
            {
                "example": True,
                "checks": 12,
                "database_mirrors": (),
                "private_mirrors": ("mirror1.example.com", "mirror2.example.com"),
                "notify_clamd": None,
            },
        ),
        (None, {"example": False, "checks": 12, "database_mirrors": (), "private_mirrors": ()}),
    ],
)
def test_parse_freshclam_conf(name: Optional[str], expected: Dict[str, Any]) -> None:
    conf = parse_freshclam_conf((FIX / name).read_text() if name else "")
    assert {k: getattr(conf, k) for k in expected} == expected


def test_parse_freshclam_conf_malformed_checks() -> None:
    with pytest.raises(ValueError, match="Checks is not a number: 'twice-a-day'"):
        parse_freshclam_conf((FIX / "freshclam-conf_malformed_checks.conf").read_text())


@pytest.mark.parametrize(
    ("name", "build_time", "version", "signatures", "level", "builder"),
    [
        (
            "cvd-header_clamav-daily-25784_published-thka2315-cav.bin",
            datetime(2020, 4, 16, 11, 58, 59, tzinfo=timezone.utc),
            25784,
            2267600,
            63,
            "raynman",
        ),
        (
            "cvd-header_crafted_daily-27450.bin",
            datetime(2026, 11, 25, 9, 24, 1, tzinfo=timezone.utc),
            27450,
            2077530,
            90,
            "tillsyn-test",
        ),
        # No Unix-seconds field: the text time "16 Mar 2016 23-17 +0000" is used.
        (
            "cvd-header_clamav-main-57_published-no-stime.bin",
            datetime(2016, 3, 16, 23, 17, tzinfo=timezone.utc),
            57,
            4218790,
            60,
            "",
        ),
    ],
)
def test_parse_cvd_header(
    name: str, build_time: datetime, version: int, signatures: int, level: int, builder: str
) -> None:
    header = parse_cvd_header((FIX / name).read_bytes())
    assert (header.build_time, header.version, header.signatures, header.functionality_level, header.builder) == (
        build_time,
        version,
        signatures,
        level,
        builder,
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ((FIX / "cvd-header_malformed_truncated.bin").read_bytes(), "truncated"),
        ((FIX / "cvd-header_malformed_not-a-database.bin").read_bytes(), "not a ClamAV database header"),
        (b"", "not a ClamAV database header"),
        (b"ClamAV-VDB:someday:x:1:90:", "non-numeric"),
        (b"ClamAV-VDB:someday:1:1:90:md5:dsig:me:", "unreadable build time"),
    ],
)
def test_parse_cvd_header_malformed(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_cvd_header(data)


def test_crafted_header_agrees_with_sigtool(tmp_path: Path) -> None:
    """ClamAV's own sigtool reads the crafted header the same way (version, build time)."""
    sigtool = require_tool("sigtool")
    target = tmp_path / "daily.cvd"
    target.write_bytes((FIX / "cvd-header_crafted_daily-27450.bin").read_bytes())
    # check=False: sigtool prints the header, then fails verifying the (absent) signed body.
    out = subprocess.run(
        [sigtool, "--info", str(target)], check=False, capture_output=True, text=True, timeout=10
    ).stdout
    assert "Version: 27450" in out
    assert "Build time: 25 Nov 2026 09:24 +0000" in out
    assert "Signatures: 2077530" in out


def test_parse_pong() -> None:
    assert parse_pong((FIX / "clamd-ping_debian-12_clamav-1.4.6.bin").read_text())
    assert not parse_pong("")
    assert not parse_pong("UNKNOWN COMMAND")


@pytest.fixture
def utc_zone() -> Any:
    """clamd prints its database date in local time: pin this process to UTC for the test."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.mark.usefixtures("utc_zone")
@pytest.mark.parametrize(
    ("name", "engine", "db_version", "db_date", "db_time"),
    [
        ("clamd-version_debian-12_clamav-1.4.6_custom-db-only.bin", "1.4.6", None, None, None),
        (
            "clamd-version_reconstructed_clamav-1.4.6_daily-27450.bin",
            "1.4.6",
            27450,
            "Wed Nov 25 09:24:01 2026",
            datetime(2026, 11, 25, 9, 24, 1, tzinfo=timezone.utc),
        ),
    ],
)
def test_parse_version(
    name: str, engine: str, db_version: Optional[int], db_date: Optional[str], db_time: Optional[datetime]
) -> None:
    version = parse_version((FIX / name).read_text())
    assert (version.engine, version.database_version, version.database_date, version.database_time) == (
        engine,
        db_version,
        db_date,
        db_time,
    )


@pytest.mark.parametrize(
    "text",
    [
        (FIX / "clamd-version_malformed_unknown-command.bin").read_text(),
        "",
        "ClamAV ",
        "ClamAV 1.4.6/x/Wed Nov 25 09:24:01 2026",
    ],
)
def test_parse_version_malformed(text: str) -> None:
    with pytest.raises(ValueError):
        parse_version(text)


def test_parse_mdatp_health_healthy() -> None:
    health = parse_mdatp_health((FIX / "mdatp-health-json_reconstructed_mdatp-101.25042_healthy.json").read_text())
    assert health.healthy is True
    assert health.health_issues == []
    assert health.licensed is True
    assert health.app_version == "101.25042.0000"
    assert health.engine_version == "1.1.25040.2"
    assert health.definitions_version == "1.441.206.0"
    assert health.definitions_status == "upToDate"
    assert health.definitions_updated == datetime(2025, 11, 25, 9, 24, 1, tzinfo=timezone.utc)
    assert health.real_time_protection_enabled is True
    assert health.real_time_protection_subsystem == "fanotify"
    assert health.passive_mode_enabled is False


def test_parse_mdatp_health_unhealthy() -> None:
    health = parse_mdatp_health(
        (FIX / "mdatp-health-json_reconstructed_mdatp-101.25042_unhealthy-rtp-off.json").read_text()
    )
    assert (health.healthy, health.licensed, health.real_time_protection_enabled) == (False, False, False)
    assert health.health_issues == ["no active event provider", "definitions out of date"]
    assert health.definitions_status == "outOfDate"
    assert health.definitions_updated == datetime(2020, 3, 4, 12, 3, 49, 305000, tzinfo=timezone.utc)
    assert health.passive_mode_enabled is None


def test_parse_mdatp_health_absent_fields_are_none() -> None:
    health = parse_mdatp_health("{}")
    assert health.healthy is None
    assert health.definitions_updated is None
    assert health.real_time_protection_enabled is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # The human-readable output (real, published) is not the JSON this parser reads.
        ((FIX / "mdatp-health-text_ubuntu-20.04_mdatp-101.02.55_unlicensed.txt").read_text(), "not JSON"),
        ("[1, 2]", "not an object"),
        ("", "not JSON"),
    ],
)
def test_parse_mdatp_health_malformed(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_mdatp_health(text)
