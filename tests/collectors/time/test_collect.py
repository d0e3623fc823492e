"""The time collector against real chronyd daemons (never touching the clock), and timesyncd/ntpd
from their captured output where those daemons cannot run here."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Sequence, Tuple

import pytest

from collectors.base import Context
from collectors.runner import CommandResult
from collectors.settings import validate
from collectors.time import SPEC
from evidence.model import Status
from tests.collectors.time.helpers import start_client, start_server
from tests.conftest import FIXTURES
from tests.evidence.shipped import judge_shipped

FIX = FIXTURES / "time"


def context(root: Path, **settings: Any) -> Context:
    return Context(root=root, settings=validate(settings, SPEC.settings, "collectors.time"))


def proc_tree(root: Path, *names: str) -> Path:
    """A captured-style /proc with one process per name (only comm is read)."""
    for pid, name in enumerate(names, 100):
        (root / "proc" / str(pid)).mkdir(parents=True)
        (root / "proc" / str(pid) / "comm").write_text(name + "\n")
    (root / "proc" / "1").mkdir(parents=True, exist_ok=True)
    (root / "proc" / "1" / "comm").write_text("init\n")
    return root


def test_synchronised_to_a_real_chronyd_server_then_adrift_when_it_stops(tmp_path: Path) -> None:
    server, port = start_server(tmp_path / "server")
    try:
        client = start_client(tmp_path / "client", port)
    except BaseException:
        server.stop()
        raise
    try:
        ctx = context(tmp_path / "root", chronyd_socket=client.socket, timedatectl="", ntpq="")
        outcome = SPEC.collect(ctx)
        o = outcome.observed
        assert outcome.status is Status.COMPLETE, outcome.gaps
        assert (o["synchronised"], o["source"], o["reference"], o["stratum"]) == (True, "chrony", "127.0.0.1", 4)
        assert o["offset_abs_s"] < 0.01 and o["leap_status"] == "Normal" and o["last_sync_at"].endswith("Z")
        assert o["daemons"][0]["sources"][0]["state"] == "selected"
        assert judge_shipped("time", outcome) == {"time-synchronised": "passing", "time-offset-small": "passing"}
        assert SPEC.summary(o).startswith("synchronised by chrony to 127.0.0.1 (stratum 4), offset ")

        server.stop()  # the only source goes silent: reach decays, no source stays selected
        deadline = time.monotonic() + 15
        while SPEC.collect(ctx).observed["synchronised"] and time.monotonic() < deadline:
            time.sleep(0.2)
        adrift = SPEC.collect(ctx)
        assert adrift.observed["synchronised"] is False
        assert "no selectable source" in adrift.observed["reason"]
        assert judge_shipped("time", adrift)["time-synchronised"] == "failing"

        client.stop()
        gone = SPEC.collect(ctx)
        assert gone.status is Status.COMPLETE
        assert gone.observed["synchronised"] is False and gone.observed["source"] is None
        assert "does not answer" in gone.observed["reason"] and client.socket in gone.observed["reason"]
    finally:
        client.stop()
        server.stop()


def test_a_chronyd_on_its_local_reference_only_is_not_synchronised(tmp_path: Path) -> None:
    server, _port = start_server(tmp_path / "server")
    try:
        outcome = SPEC.collect(context(tmp_path / "root", chronyd_socket=server.socket, timedatectl="", ntpq=""))
        assert outcome.observed["synchronised"] is False and outcome.observed["source"] == "chrony"
        assert "own clock" in outcome.observed["reason"] and outcome.observed["stratum"] == 3
    finally:
        server.stop()


# ---------------------------------------------------------------- captured output where the daemon cannot run
def _bytes(name: str) -> bytes:
    return (FIX / name).read_bytes() if name else b""


class Replay:
    """A runner answering each command from a captured file: {argv tail: (stdout file, stderr file, rc)}."""

    def __init__(self, answers: Dict[Tuple[str, ...], Tuple[str, str, int]]) -> None:
        self.answers = answers
        self.calls: list[Tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str], **_: Any) -> CommandResult:
        self.calls.append(tuple(argv))
        for tail, (out, err, rc) in self.answers.items():
            if tuple(argv[-len(tail) :]) == tail:
                return CommandResult(argv, rc, _bytes(out), _bytes(err))
        return CommandResult(argv, None, b"", b"", "not found")


NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=timezone.utc)


def _replayed(root: Path, answers: Dict[Tuple[str, ...], Tuple[str, str, int]], **settings: Any) -> Tuple[Any, Replay]:
    replay = Replay(answers)
    ctx = context(root, **settings)
    ctx.run = replay
    ctx.now = lambda: NOW
    return SPEC.collect(ctx), replay


def test_timesyncd_synchronised(tmp_path: Path) -> None:
    root = proc_tree(tmp_path, "systemd-timesyn")
    (root / "var/lib/systemd/timesync").mkdir(parents=True)
    (root / "var/lib/systemd/timesync/clock").write_text("")
    outcome, replay = _replayed(
        root,
        {
            ("timesync-status",): ("timedatectl-timesync-status_debian_systemd_published-synced.txt", "", 0),
            ("show",): ("timedatectl-show_reconstructed_systemd-252_synchronised.txt", "", 0),
        },
    )
    o = outcome.observed
    assert (o["synchronised"], o["source"], o["reference"], o["stratum"]) == (
        True,
        "timesyncd",
        "time.cloudflare.com",
        3,
    )
    assert o["offset_s"] == pytest.approx(291e-6) and o["last_sync_at"].endswith("Z")
    # chronyd and ntpd are not in the process list: nothing was asked of them
    assert [c[-1] for c in replay.calls] == ["timesync-status", "show"]


def test_timesyncd_without_a_server_fails_and_kernel_no_fails(tmp_path: Path) -> None:
    root = proc_tree(tmp_path, "systemd-timesyn")
    outcome, _ = _replayed(
        root,
        {
            ("timesync-status",): ("timedatectl-timesync-status_reconstructed_systemd-252_no-server.txt", "", 0),
            ("show",): ("timedatectl-show_reconstructed_systemd-252_not-synchronised.txt", "", 0),
        },
    )
    assert outcome.observed["synchronised"] is False
    assert outcome.observed["reason"] == "systemd-timesyncd has no server answering"
    assert judge_shipped("time", outcome)["time-synchronised"] == "failing"


def test_timesyncd_without_a_server_is_not_synchronised_whatever_the_kernel_says(tmp_path: Path) -> None:
    root = proc_tree(tmp_path, "systemd-timesyn")
    outcome, _ = _replayed(
        root,
        {
            ("timesync-status",): ("timedatectl-timesync-status_reconstructed_systemd-252_no-server.txt", "", 0),
            ("show",): ("timedatectl-show_reconstructed_systemd-252_synchronised.txt", "", 0),
        },
    )
    assert outcome.observed["synchronised"] is False


def test_timesyncd_running_without_dbus_is_unknown_never_passing(tmp_path: Path) -> None:
    root = proc_tree(tmp_path, "systemd-timesyn")
    (root / "var/lib/systemd/timesync").mkdir(parents=True)
    (root / "var/lib/systemd/timesync/clock").write_text("")
    (root / "run/systemd/timesync").mkdir(parents=True)
    (root / "run/systemd/timesync/synchronized").write_text("")
    outcome, _ = _replayed(
        root, {("timesync-status",): ("", "timedatectl-timesync-status_debian-12_systemd-252_no-systemd.stderr.txt", 1)}
    )
    assert outcome.status is Status.PARTIAL and outcome.observed["synchronised"] is None
    gap = outcome.gaps[0]
    assert gap.what == "time daemon timesyncd"
    assert "Failed to connect to bus: Host is down" in gap.reason and "last synchronised at" in gap.reason
    assert judge_shipped("time", outcome)["time-synchronised"] == "unknown"


def test_ntpd_synchronised_and_not(tmp_path: Path) -> None:
    root = proc_tree(tmp_path, "ntpd")
    synced, _ = _replayed(root, {("-pn",): ("ntpq-pn_centos-7_ntp-4.2.6_published-synced.txt", "", 0)})
    o = synced.observed
    assert (o["synchronised"], o["source"], o["reference"], o["stratum"]) == (True, "ntpd", "ntp3.jst.mfeed.", 3)
    assert o["offset_abs_s"] == pytest.approx(1.033e-3)
    assert o["last_sync_at"] == "2026-12-07T11:59:32Z"  # the system peer's last packet, 28 s before
    pool, _ = _replayed(root, {("-pn",): ("ntpq-pn_ubuntu-22.04_ntp-4.2.8_published-pool-not-synced.txt", "", 0)})
    assert pool.observed["synchronised"] is False
    assert pool.observed["reason"] == "ntpd has no system peer among 5 peers"


def test_ntpd_seen_but_not_answering_is_unknown(tmp_path: Path) -> None:
    root = proc_tree(tmp_path, "ntpd")
    outcome, _ = _replayed(root, {("-pn",): ("", "ntpq-pn_reconstructed_ntp-4.2.8_no-daemon.stderr.txt", 1)})
    assert outcome.observed["synchronised"] is None
    assert outcome.gaps[0].reason == "ntpd runs but ntpd does not answer ntpq: ntpq: read: Connection refused"


def test_no_time_daemon_at_all_is_a_deviation_not_unknown(tmp_path: Path) -> None:
    outcome, replay = _replayed(proc_tree(tmp_path, "sshd", "cron"), {})
    assert replay.calls == []
    assert outcome.status is Status.COMPLETE and outcome.observed["synchronised"] is False
    assert judge_shipped("time", outcome) == {"time-synchronised": "failing", "time-offset-small": "unknown"}
    assert SPEC.summary(outcome.observed).startswith("NOT synchronised: chrony: chronyd is not running;")


def test_without_a_process_list_every_tool_is_asked(tmp_path: Path) -> None:
    outcome, replay = _replayed(
        tmp_path, {("tracking",): ("chronyc-tracking-csv_debian-12_chrony-4.3_no-daemon.txt", "", 1)}
    )
    assert [c[0] for c in replay.calls] == ["chronyc", "timedatectl", "ntpq"]
    # chronyd does not answer and whether it runs cannot be seen: unknown; timedatectl and ntpq
    # are not installed, so neither timesyncd nor ntpd can be running
    assert outcome.observed["synchronised"] is None
    assert [g.what for g in outcome.gaps] == ["time daemon chrony"]
    assert "whether chronyd runs is unknown" in outcome.gaps[0].reason
    assert [d["running"] for d in outcome.observed["daemons"]] == [None, False, False]
