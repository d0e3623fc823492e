"""apcupsd NIS against an in-test server speaking the real framing with captured data,
and the collector's status decisions over fixture roots."""

from __future__ import annotations

import shutil
import socket
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest

from collectors.power import SPEC, read_servers
from collectors.settings import SettingsError, validate
from evidence.model import Status
from tests.collectors.power.helpers import FIXTURES, NisServer, context
from tests.evidence.shipped import judge_shipped


@pytest.fixture
def smart_ups() -> Iterator[NisServer]:
    text = (FIXTURES / "apcaccess_debian_apcupsd-3.14.14_smart-ups-sc450-rm.txt").read_bytes()
    server = NisServer(text.splitlines(keepends=True))
    yield server
    server.close()


def test_nis_status_exchange(smart_ups: NisServer) -> None:
    result = read_servers.query_apcupsd("127.0.0.1", smart_ups.port, 2.0)
    assert smart_ups.requests == [b"status"]
    assert (result.reachable, result.error) == (True, None)
    ups = result.ups[0]
    assert (ups.name, ups.model, ups.flags, ups.runtime_s, ups.self_test_date) == (
        "USV",
        "Smart-UPS SC450 RM",
        ["OL"],
        2100,
        "2024-05-18T18:58:27Z",
    )


def test_nis_server_that_is_not_apcupsd() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        def answer() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(16)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        result = read_servers.query_apcupsd("127.0.0.1", port, 2.0)
        thread.join(2)
    assert result.reachable is False
    assert result.error is not None and "not an apcupsd NIS reply" in result.error


def test_silent_server_times_out_within_the_setting() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts (kernel backlog) but never answers
        result = read_servers.query_nut("127.0.0.1", listener.getsockname()[1], 0.3)
    assert (result.reachable, result.error) == (False, "timed out")


def test_apcupsd_and_a_down_nut_server(smart_ups: NisServer, tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "etc_apcupsd", tmp_path, dirs_exist_ok=True)
    # A NUT server that accepts but never answers (a hung upsd): a gap, unlike a refused
    # local port, which only means no NUT here.
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(1)
        dead = hung.getsockname()[1]
        ctx = context(
            tmp_path,
            nut_servers=[{"host": "127.0.0.1", "port": dead}],
            apcupsd_servers=[{"host": "127.0.0.1", "port": smart_ups.port}],
            server_timeout=0.3,
        )
        outcome = SPEC.collect(ctx)
    assert outcome.status is Status.PARTIAL
    assert [u["name"] for u in outcome.observed["ups"]] == ["USV"]
    assert outcome.observed["all_on_line"] is True
    whats = [g.what for g in outcome.gaps]
    assert f"nut server 127.0.0.1:{dead}" in whats
    assert {g.what: g.reason for g in outcome.gaps}[
        f"apcupsd ups USV@127.0.0.1:{smart_ups.port}: self-test result"
    ] == ("apcupsd reports NO: no self-test result (a UPS shows one only for 5 minutes after a test)")
    usv = outcome.observed["ups"][0]
    assert (usv["self_test_result"], usv["self_test_result_raw"], usv["self_test_date"]) == (
        None,
        "NO",
        "2024-05-18T18:58:27Z",
    )
    # the shipped policy: the result is unknown (not a failed test); LASTSTEST dates the last test
    at = datetime(2024, 6, 1, tzinfo=timezone.utc)
    verdicts = judge_shipped("power", outcome, at)
    assert (verdicts["power-self-test-passed"], verdicts["power-self-test-recent"]) == ("unknown", "passing")
    assert judge_shipped("power", outcome, at + timedelta(days=30))["power-self-test-recent"] == "failing"
    apc = outcome.observed["shutdown_client"]["apcupsd"]
    assert (apc["configured"], apc["isconfigured"], apc["upstype"], apc["battery_level_pct"]) == (
        True,
        True,
        "usb",
        5.0,
    )
    assert apc["running"] in (True, False)
    assert SPEC.summary(outcome.observed) == "1 UPS: USV OL 100% 2100s; shutdown client: apcupsd"


def test_nothing_here_is_not_present(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "etc_debian-12_nut-2.8.0_default", tmp_path, dirs_exist_ok=True)
    outcome = SPEC.collect(context(tmp_path))
    assert outcome.status is Status.NOT_PRESENT
    reason = outcome.gaps[0].reason
    assert "connection refused" in reason and "no battery or UPS in /sys/class/power_supply" in reason
    assert outcome.observed["shutdown_client"]["upsmon"]["mode"] == "none"
    assert outcome.observed["shutdown_client_configured"] is False


def test_laptop_battery_without_ups_software(tmp_path: Path) -> None:
    outcome = SPEC.collect(context(FIXTURES / "sysfs_laptop-dell"))
    assert outcome.status is Status.COMPLETE, outcome.gaps
    assert outcome.observed["host_batteries"] == ["BAT0"]
    supplies = {s["name"]: s for s in outcome.observed["power_supplies"]}
    assert (supplies["BAT0"]["capacity_pct"], supplies["AC"]["type"], supplies["AC"]["online"]) == (98, "Mains", True)
    assert supplies["hidpp_battery_0"]["scope"] == "Device"
    assert SPEC.summary(outcome.observed) == "0 UPS; battery BAT0; shutdown client: none"


def test_unreadable_sysfs_is_a_gap(tmp_path: Path) -> None:
    (tmp_path / "sys" / "class").mkdir(parents=True)
    (tmp_path / "sys" / "class" / "power_supply").write_text("not a directory")
    outcome = SPEC.collect(context(tmp_path))
    assert outcome.status is Status.PARTIAL
    assert [g.what for g in outcome.gaps] == ["power supplies"]


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"nut_servers": [{"host": "h", "prot": 1}]}, "collectors.power.nut_servers[0].prot"),
        ({"server_timeout": "fast"}, "collectors.power.server_timeout"),
        ({"apcupsd_servers": [{"host": "h", "port": "3551"}]}, "collectors.power.apcupsd_servers[0].port"),
    ],
)
def test_bad_settings_name_the_key(settings: dict, key: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(SettingsError) as info:
        validate(settings, SPEC.settings, "collectors.power")
    assert info.value.key == key


def test_defaults_and_watch_paths() -> None:
    settings = validate({}, SPEC.settings, "collectors.power")
    assert settings["nut_servers"] == [{"host": "127.0.0.1", "port": 3493, "username": None, "password_file": None}]
    assert settings["apcupsd_servers"] == [{"host": "127.0.0.1", "port": 3551}]
    assert list(SPEC.watch_paths(settings)) == [
        "/etc/nut/nut.conf",
        "/etc/nut/upsmon.conf",
        "/etc/apcupsd/apcupsd.conf",
        "/etc/default/apcupsd",
    ]
    assert SPEC.controls == ("M01",)
