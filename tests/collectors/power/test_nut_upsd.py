"""The collector against a real NUT upsd with dummy-ups drivers on a private port.

upsd and dummy-ups run from a temporary NUT_CONFPATH/NUT_STATEPATH; a ``.dev`` file
is read in dummy-ups' "dummy-once" mode and re-read when it changes (dummy-ups(8)).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Dict, List

from evidence.model import Outcome, Status
from tests.collectors.power.helpers import (
    ON_BATTERY,
    ON_LINE,
    Nut,
    _wait,
    context,
    free_port,
    served_flags,
)


def _by_name(outcome: Outcome) -> Dict[str, Dict[str, Any]]:
    return {u["name"]: u for u in outcome.observed["ups"]}


def test_every_ups_of_the_server(nut: Nut, tmp_path: Path) -> None:
    nut.set_flip(ON_LINE)
    _wait(lambda: served_flags(nut) == ["OL", "CHRG"], 15, "OL CHRG")
    ctx = context(tmp_path, nut_servers=[{"host": "127.0.0.1", "port": nut.port}], apcupsd_servers=[])
    outcome = ctx_collect(ctx)
    ups = _by_name(outcome)
    flip = ups["flip"]
    assert (flip["flags"], flip["on_line"], flip["battery_charge_pct"], flip["runtime_s"]) == (
        ["OL", "CHRG"],
        True,
        95.0,
        1800,
    )
    assert flip["self_test_result"] == "Done and passed"
    assert ups["pr1000"]["manufacturer"] == "CyberPower Systems"
    assert flip["server"] == f"127.0.0.1:{nut.port}" and flip["description"] == "Eaton in the rack"
    assert (ups["pr1000"]["runtime_s"], ups["pr1000"]["on_line"]) == (14340, True)
    # The CyberPower reports no self-test result: unknown, so a gap says so.
    assert outcome.status is Status.PARTIAL
    assert [g.what for g in outcome.gaps] == [f"nut ups pr1000@127.0.0.1:{nut.port}: self-test result"]


def test_on_line_to_on_battery_to_low_battery(nut: Nut, tmp_path: Path) -> None:
    ctx = context(tmp_path, nut_servers=[{"host": "127.0.0.1", "port": nut.port}], apcupsd_servers=[])
    nut.set_flip(ON_LINE)
    seen: List[List[str]] = []

    def flip_flags(expected: List[str]) -> Callable[[], bool]:
        def check() -> bool:
            flags = _by_name(ctx_collect(ctx))["flip"]["flags"]
            if not seen or seen[-1] != flags:
                seen.append(flags)
            return bool(flags == expected)

        return check

    _wait(flip_flags(["OL", "CHRG"]), 15, "OL CHRG")
    nut.set_flip(ON_BATTERY)
    _wait(flip_flags(["OB", "DISCHRG"]), 15, "OB DISCHRG")
    nut.set_flip(ON_LINE.replace("OL CHRG", "OB LB DISCHRG").replace("charge: 95", "charge: 8"))
    _wait(flip_flags(["OB", "LB", "DISCHRG"]), 15, "OB LB DISCHRG")
    flip = _by_name(ctx_collect(ctx))["flip"]
    assert (flip["on_line"], flip["battery_charge_pct"]) == (False, 8.0)
    assert seen[0] == ["OL", "CHRG"] and seen[-1] == ["OB", "LB", "DISCHRG"]


def test_down_server_is_a_gap_and_others_still_reported(nut: Nut, tmp_path: Path) -> None:
    dead = free_port()
    ctx = context(
        tmp_path,
        nut_servers=[{"host": "127.0.0.1", "port": dead}, {"host": "127.0.0.1", "port": nut.port}],
        apcupsd_servers=[],
    )
    # nut.conf says this host runs upsd, so a refused local port is a real gap.
    (tmp_path / "etc" / "nut").mkdir(parents=True)
    (tmp_path / "etc" / "nut" / "nut.conf").write_text("MODE=standalone\n")
    outcome = ctx_collect(ctx)
    assert outcome.status is Status.PARTIAL
    assert sorted(_by_name(outcome)) == ["flip", "pr1000"]
    assert any(g.what == f"nut server 127.0.0.1:{dead}" and "refused" in g.reason for g in outcome.gaps), outcome.gaps
    servers = {s["address"]: s for s in outcome.observed["servers"]}
    assert servers[f"127.0.0.1:{dead}"]["reachable"] is False
    assert servers[f"127.0.0.1:{nut.port}"]["ups_count"] == 2


def test_login_with_password_file(nut: Nut, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s3cret\n")
    ctx = context(
        tmp_path,
        nut_servers=[{"host": "127.0.0.1", "port": nut.port, "username": "monuser", "password_file": "/secret"}],
        apcupsd_servers=[],
    )
    outcome = ctx_collect(ctx)
    assert outcome.observed["servers"][0]["login"] == "ok"
    assert outcome.observed["ups_count"] == 2
    missing = context(
        tmp_path,
        nut_servers=[{"host": "127.0.0.1", "port": nut.port, "username": "monuser", "password_file": "/nope"}],
        apcupsd_servers=[],
    )
    gaps = ctx_collect(missing).gaps
    assert any(g.what == "nut 127.0.0.1 login" and "/nope does not exist" in g.reason for g in gaps), gaps


def test_upsmon_monitor_servers_are_followed(nut: Nut, tmp_path: Path) -> None:
    conf = tmp_path / "etc" / "nut"
    conf.mkdir(parents=True)
    (conf / "nut.conf").write_text("MODE=netclient\n")
    (conf / "upsmon.conf").write_text(f"MONITOR flip@127.0.0.1:{nut.port} 1 monuser s3cret secondary\n")
    ctx = context(tmp_path, apcupsd_servers=[])
    outcome = ctx_collect(ctx)
    assert sorted(_by_name(outcome)) == ["flip", "pr1000"]
    client = outcome.observed["shutdown_client"]["upsmon"]
    assert (client["configured"], client["mode"], client["monitors"][0]["ups"]) == (True, "netclient", "flip")
    assert "s3cret" not in repr(outcome.observed)


def ctx_collect(ctx: Any) -> Outcome:
    from collectors.power import SPEC

    return SPEC.collect(ctx)


def test_probe_sees_a_status_change_cheaply(nut: Nut, tmp_path: Path) -> None:
    """The daemon's quick probe: its key changes exactly when a UPS's status words do."""
    from collectors.power.quick import status_key

    ctx = context(tmp_path, nut_servers=[{"host": "127.0.0.1", "port": nut.port}], apcupsd_servers=[])
    nut.set_flip(ON_LINE)
    _wait(lambda: ("nut", f"nut ups flip@127.0.0.1:{nut.port}", "OL CHRG") in status_key(ctx), 15, "probe sees OL CHRG")
    on_line = status_key(ctx)
    nut.set_flip(ON_LINE.replace("charge: 95", "charge: 94"))  # a charge wobble is no status change
    time.sleep(2.5)
    assert status_key(ctx) == on_line
    nut.set_flip(ON_LINE.replace("OL CHRG", "OB DISCHRG"))
    _wait(lambda: status_key(ctx) != on_line, 15, "probe sees OB DISCHRG")
    assert ("nut", f"nut ups flip@127.0.0.1:{nut.port}", "OB DISCHRG") in status_key(ctx)
    # no UPS software at all: an empty key, quickly
    none = context(tmp_path, nut_servers=[{"host": "127.0.0.1", "port": free_port()}], apcupsd_servers=[])
    assert status_key(none) == ()
