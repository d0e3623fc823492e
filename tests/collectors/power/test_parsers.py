"""Table-driven tests of the pure parsers over captured and published output."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import pytest

from collectors.power import (
    parse_apcupsd,
    parse_nut,
    parse_power_supply,
    parse_shutdown_config,
    parse_status_flags,
    parse_values,
)
from tests.collectors.power.helpers import FIXTURES


def read(name: str) -> str:
    return (FIXTURES / name).read_text()


# --- NUT network protocol -------------------------------------------------------------


def test_list_ups_captured_with_escaped_quotes() -> None:
    assert parse_nut.parse_list_ups(read("nut-list-ups_debian-12_nut-2.8.0_dummy-ups.txt")) == {
        "pr1000": 'CyberPower PR1000 "rack"'
    }


def test_list_ups_absent_is_empty() -> None:
    assert parse_nut.parse_list_ups(read("nut-list-ups_absent_no-ups.txt")) == {}


def test_list_var_captured_maps_to_ups() -> None:
    variables = parse_nut.parse_list_var(read("nut-list-var_debian-12_nut-2.8.0_dummy-ups-pr1000.txt"), "pr1000")
    assert variables["ups.status"] == "OL"
    assert variables["battery.runtime"] == "14340"
    ups = parse_nut.ups_from_vars("pr1000", "127.0.0.1:3493", variables)
    assert (ups.flags, ups.on_line, ups.battery_charge_pct, ups.runtime_s, ups.load_pct) == (
        ["OL"],
        True,
        100.0,
        14340,
        0.0,
    )
    assert ups.manufacturer == "CyberPower Systems"
    assert ups.model == "Dummy UPS"  # dummy-ups sets device.model itself
    assert ups.self_test_result is None


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("nut-list-var_malformed_truncated-no-end.txt", None),
        ("nut-err-unknown-ups_debian-12_nut-2.8.0.txt", "UNKNOWN-UPS"),
    ],
)
def test_list_var_bad_replies_raise(name: str, code: Optional[str]) -> None:
    with pytest.raises(parse_nut.NutProtocolError) as info:
        parse_nut.parse_list_var(read(name), "pr1000")
    assert info.value.code == code


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('VAR ups device.model "Smart-UPS 1500"', ["VAR", "ups", "device.model", "Smart-UPS 1500"]),
        (r'UPS a "say \"hi\" \\ there"', ["UPS", "a", 'say "hi" \\ there']),
        ('VAR ups x ""', ["VAR", "ups", "x", ""]),
    ],
)
def test_split_words(line: str, words: List[str]) -> None:
    assert parse_nut.split_words(line) == words


def test_split_words_unterminated_quote() -> None:
    with pytest.raises(parse_nut.NutProtocolError):
        parse_nut.split_words('VAR ups x "open')


def test_ups_from_vars_test_result_and_wait() -> None:
    ups = parse_nut.ups_from_vars(
        "u", "s", {"ups.status": "OB LB DISCHRG", "ups.test.result": "Done and passed", "ups.test.date": "05/18/24"}
    )
    assert (ups.flags, ups.on_line, ups.self_test_result, ups.self_test_date) == (
        ["OB", "LB", "DISCHRG"],
        False,
        "Done and passed",
        "2024-05-18",
    )
    waiting = parse_nut.ups_from_vars("u", "s", {"ups.status": "WAIT"})
    assert (waiting.flags, waiting.on_line, waiting.status_raw) == ([], None, "WAIT")


# --- apcupsd status (apcaccess / NIS) ---------------------------------------------------

APC_CASES: List[Tuple[str, Dict[str, Any]]] = [
    (
        "apcaccess_debian_apcupsd-3.14.14_back-ups-rs-1500ms2.txt",
        {
            "name": "nix",
            "model": "Back-UPS RS 1500MS2",
            "flags": ["OL"],
            "on_line": True,
            "battery_charge_pct": 100.0,
            "runtime_s": 10800,
            "load_pct": 3.0,
            "self_test_result": None,  # SELFTEST NO: no result, not a failed one
            "self_test_result_raw": "NO",
            "self_test_date": None,
        },
    ),
    (
        "apcaccess_debian_apcupsd-3.14.14_smart-ups-sc450-rm.txt",
        {
            "name": "USV",
            "model": "Smart-UPS SC450 RM",
            "flags": ["OL"],
            "on_line": True,
            "battery_charge_pct": 100.0,
            "runtime_s": 2100,
            "load_pct": 33.1,
            "self_test_date": "2024-05-18T18:58:27Z",
            "self_test_date_raw": "2024-05-18 19:58:27 +0100",
        },
    ),
    (
        "apcaccess_reconstructed_back-ups-rs-1500ms2_onbatt-lowbatt.txt",
        {
            "flags": ["OB", "LB"],
            "on_line": False,
            "battery_charge_pct": 9.0,
            "runtime_s": 150,
            "status_raw": "ONBATT LOWBATT",
        },
    ),
]


@pytest.mark.parametrize(("name", "expected"), APC_CASES)
def test_apcaccess_captures(name: str, expected: Dict[str, Any]) -> None:
    ups = parse_apcupsd.ups_from_status(parse_apcupsd.parse_status(read(name)), "127.0.0.1:3551").to_dict()
    assert {key: ups[key] for key in expected} == expected
    assert ups["source"] == "apcupsd" and ups["manufacturer"] is None


@pytest.mark.parametrize(
    ("code", "result"),
    [("OK", "OK (passed)"), ("BT", "BT (failed: battery capacity)"), ("NG", "NG (failed: overload)"),
     ("NO", None), ("IP", None), ("??", None), ("WN", "WN")],
)  # fmt: skip
def test_apcupsd_self_test_codes(code: str, result: Optional[str]) -> None:
    """The Smart-UPS capture right after a test: a result only for OK/BT/NG (an unlisted code as is)."""
    text = read("apcaccess_debian_apcupsd-3.14.14_smart-ups-sc450-rm.txt").replace(
        "SELFTEST : NO", f"SELFTEST : {code}"
    )
    ups = parse_apcupsd.ups_from_status(parse_apcupsd.parse_status(text), "127.0.0.1:3551")
    assert (ups.self_test_result, ups.self_test_result_raw, ups.self_test_date) == (
        result,
        code,
        "2024-05-18T18:58:27Z",
    )


@pytest.mark.parametrize(
    "name",
    ["apcaccess_absent_apcupsd-3.14.14_connection-refused.txt", "apcaccess_malformed_truncated-no-separators.txt"],
)
def test_apcaccess_absent_or_malformed_raises(name: str) -> None:
    with pytest.raises(parse_apcupsd.NisError):
        parse_apcupsd.parse_status(read(name))


def test_nis_frames_round_trip_and_partial() -> None:
    data = parse_apcupsd.encode_frame(b"APC      : 001\n") + parse_apcupsd.encode_frame(b"STATUS   : ONLINE\n")
    records, done, used = parse_apcupsd.decode_frames(data + b"\x00")  # half of the end marker
    assert (records, done, used) == ([b"APC      : 001\n", b"STATUS   : ONLINE\n"], False, len(data))
    assert parse_apcupsd.decode_frames(b"\x00\x00") == ([], True, 2)
    with pytest.raises(parse_apcupsd.NisError):
        parse_apcupsd.decode_frames(b"HTTP/1.1 400 Bad Request\r\n")


@pytest.mark.parametrize(
    ("text", "flags", "unmapped"),
    [
        ("ONLINE", ["OL"], []),
        ("ONBATT LOWBATT", ["OB", "LB"], []),
        ("ONLINE REPLACEBATT", ["OL", "RB"], []),
        ("COMMLOST", [], ["COMMLOST"]),
        ("SHUTTING DOWN", ["FSD"], []),
        ("CAL TRIM BOOST OVERLOAD NOBATT", ["CAL", "TRIM", "BOOST", "OVER"], ["NOBATT"]),
    ],
)
def test_apcupsd_status_words(text: str, flags: List[str], unmapped: List[str]) -> None:
    assert parse_status_flags.parse_apcupsd_status(text) == (flags, unmapped)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [(["OL", "CHRG"], True), (["OB", "DISCHRG"], False), (["OL", "OB"], False), (["FSD"], None), ([], None)],
)
def test_on_line(flags: List[str], expected: Optional[bool]) -> None:
    assert parse_status_flags.on_line(flags) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-18 19:58:27 +0100", "2024-05-18T18:58:27Z"),
        ("2024-05-18", "2024-05-18"),
        ("02/22/19", "2019-02-22"),
        ("not a date", None),
        (None, None),
    ],
)
def test_test_date(text: Optional[str], expected: Optional[str]) -> None:
    assert parse_values.test_date(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("35.0 Minutes", 2100), ("969", 969), ("120 Seconds", 120), ("N/A", None), (None, None)],
)
def test_seconds(text: Optional[str], expected: Optional[int]) -> None:
    assert parse_values.seconds(text) == expected


# --- sysfs power_supply ----------------------------------------------------------------

SYSFS = FIXTURES / "sysfs_laptop-dell" / "sys" / "class" / "power_supply"


def test_sysfs_battery_uevent() -> None:
    supply = parse_power_supply.supply_from_uevent("BAT0", (SYSFS / "BAT0" / "uevent").read_text())
    assert (supply.type, supply.status, supply.capacity_pct, supply.present, supply.model) == (
        "Battery",
        "Charging",
        98,
        True,
        "DELL PN1VN08",
    )
    assert parse_power_supply.is_host_power(supply)


def test_sysfs_mains_type_from_type_file() -> None:
    supply = parse_power_supply.supply_from_uevent("AC", (SYSFS / "AC" / "uevent").read_text(), "Mains\n")
    assert (supply.type, supply.online, supply.capacity_pct) == ("Mains", True, None)
    assert not parse_power_supply.is_host_power(supply)


def test_sysfs_peripheral_and_malformed() -> None:
    mouse = parse_power_supply.supply_from_uevent("hidpp_battery_0", (SYSFS / "hidpp_battery_0" / "uevent").read_text())
    assert (mouse.type, mouse.scope, parse_power_supply.is_host_power(mouse)) == ("Battery", "Device", False)
    broken = parse_power_supply.supply_from_uevent(
        "BAT1", "POWER_SUPPLY_CAPACITY=lots\ngarbage\nPOWER_SUPPLY_CAPACITY_X"
    )
    assert (broken.name, broken.type, broken.capacity_pct) == ("BAT1", None, None)


# --- shutdown client configuration -------------------------------------------------------


def test_upsmon_monitor_lines_without_passwords() -> None:
    config = parse_shutdown_config.parse_upsmon_conf(read("etc_netclient/etc/nut/upsmon.conf"))
    assert [(m.ups, m.host, m.port, m.power_value, m.role) for m in config.monitors] == [
        ("rack1", "nas.example.net", 3493, 1, "secondary"),
        ("pr1000", "127.0.0.1", 34999, 1, "secondary"),
    ]
    assert "s3cr#t" not in repr(config)
    assert config.shutdown_cmd == "/sbin/shutdown -h +0"


def test_upsmon_debian_default_has_no_monitor() -> None:
    config = parse_shutdown_config.parse_upsmon_conf(read("etc_debian-12_nut-2.8.0_default/etc/nut/upsmon.conf"))
    assert config.monitors == []
    mode = parse_shutdown_config.parse_shell_assignments(read("etc_debian-12_nut-2.8.0_default/etc/nut/nut.conf"))
    assert mode["MODE"] == "none"


@pytest.mark.parametrize(
    ("system", "expected"),
    [("ups", ("ups", "localhost", 3493)), ("a@h:1234", ("a", "h", 1234)), ("a@[::1]:3494", ("a", "::1", 3494))],
)
def test_split_system(system: str, expected: Tuple[str, str, int]) -> None:
    assert parse_shutdown_config.split_system(system) == expected


def test_apcupsd_conf() -> None:
    conf = parse_shutdown_config.parse_apcupsd_conf(read("etc_apcupsd/etc/apcupsd/apcupsd.conf"))
    assert (conf["UPSTYPE"], conf["BATTERYLEVEL"], conf["NISPORT"]) == ("usb", "5", "3551")
