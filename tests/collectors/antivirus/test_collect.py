"""The whole collector over fake node trees: products, not-present, ClamAV details, Defender, settings."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, List, Sequence

import pytest

from collectors.antivirus import SPEC, read_system
from collectors.antivirus.collect import collect_with
from collectors.antivirus.products import ProcessInfo
from collectors.base import Context
from collectors.runner import CommandResult
from collectors.settings import SettingsError, defaults, validate
from evidence.model import Status
from tests.collectors.antivirus.helpers import FIX, context, make_tree


def procs(*entries: Sequence[str]) -> Any:
    """A process lister replaying a captured list: each entry is (name, *cmdline)."""
    found = [ProcessInfo(100 + i, e[0], tuple(e[1:])) for i, e in enumerate(entries)]
    return lambda names: list(found)


def test_no_antivirus_is_not_present_with_what_was_looked_for(tmp_path: Path) -> None:
    outcome = collect_with(context(make_tree(tmp_path)), procs(("sshd", "/usr/sbin/sshd", "-D")))
    assert outcome.status is Status.NOT_PRESENT
    assert outcome.observed == {"products": []}
    reason = outcome.gaps[0].reason
    assert reason.startswith("no antivirus found: looked for ClamAV (units clamav-daemon.service")
    for name in (
        "falcon-sensor.service",
        "sentinelone.service",
        "sophos-spl.service",
        "esets.service",
        "ds_agent.service",
        "wdavdaemon",
    ):
        assert name in reason
    assert SPEC.summary(outcome.observed) == "no antivirus"


def test_other_products_by_unit_file_and_process(tmp_path: Path) -> None:
    tree = make_tree(
        tmp_path,
        {
            "/etc/systemd/system/falcon-sensor.service": "[Service]\n",
            "/lib/systemd/system/sentinelone.service": "[Service]\n",
            "/opt/eset": None,
        },
    )
    outcome = collect_with(
        context(tree),
        procs(
            ("falcond", "/opt/CrowdStrike/falcond"),
            ("startd", "/opt/eset/efs/sbin/startd"),
            ("ds_agent", "/opt/ds_agent/ds_agent"),
        ),
    )
    assert outcome.status is Status.COMPLETE
    by_key = {p["product"]: p for p in outcome.observed["products"]}
    assert sorted(by_key) == ["crowdstrike", "eset", "sentinelone", "trendmicro"]
    assert by_key["crowdstrike"] == {
        "product": "crowdstrike",
        "name": "CrowdStrike Falcon",
        "installed": True,
        "running": True,
        "units": ["/etc/systemd/system/falcon-sensor.service"],
        "paths": [],
        "processes": ["falcond"],
    }
    assert (by_key["sentinelone"]["installed"], by_key["sentinelone"]["running"]) == (True, False)
    assert by_key["eset"]["running"] is True and by_key["eset"]["processes"] == ["startd"]
    assert by_key["eset"]["paths"] == ["/opt/eset"]
    # Running without any unit file or install path seen: reported, but not as installed.
    assert (by_key["trendmicro"]["installed"], by_key["trendmicro"]["running"]) == (False, True)
    assert SPEC.summary(outcome.observed) == (
        "CrowdStrike Falcon running; SentinelOne not running; ESET running; Trend Micro Deep Security running"
    )


def test_hidden_processes_make_running_unknown_not_false(tmp_path: Path) -> None:
    tree = make_tree(
        tmp_path,
        {
            "/proc/mounts": "proc /proc proc rw,nosuid,nodev,noexec,relatime,hidepid=invisible 0 0\n",
            "/usr/lib/systemd/system/sophos-spl.service": "[Service]\n",
        },
    )
    ctx = Context(root=tree, settings=defaults(SPEC.settings), euid=1000)
    outcome = collect_with(ctx, procs())
    assert outcome.status is Status.PARTIAL
    assert outcome.observed["products"][0]["running"] is None
    assert outcome.gaps[0].what == "processes"
    assert "hidepid=invisible" in outcome.gaps[0].reason
    # With nothing installed and processes hidden, absence cannot be claimed either.
    empty = make_tree(tmp_path / "empty", {"/proc/mounts": "proc /proc proc rw,hidepid=2 0 0\n"})
    blind = collect_with(Context(root=empty, settings=defaults(SPEC.settings), euid=1000), procs())
    assert blind.status is Status.PARTIAL
    assert blind.observed["products"] == []


def test_clamav_freshclam_daemon_and_on_access(tmp_path: Path) -> None:
    tree = make_tree(
        tmp_path,
        {
            "/etc/clamav/clamd.conf": FIX / "clamd-conf_reconstructed_tcp-onaccess.conf",
            "/etc/clamav/freshclam.conf": FIX / "freshclam-conf_debian-12_clamav-freshclam-1.4.6.conf",
            "/etc/systemd/system/multi-user.target.wants/clamav-freshclam.service": "",
            "/srv/clamav/db/daily.cld": FIX / "cvd-header_crafted_daily-27450.bin",
            "/srv/clamav/db/daily.cvd": FIX / "cvd-header_clamav-daily-25784_published-thka2315-cav.bin",
            "/srv/clamav/db/bytecode.cvd": FIX / "cvd-header_malformed_truncated.bin",
        },
    )
    outcome = collect_with(
        context(tree, clamd_tcp="127.0.0.1:1", socket_timeout=0.5),
        procs(
            ("freshclam", "/usr/bin/freshclam", "-d", "--foreground=true"),
            ("clamonacc", "/usr/sbin/clamonacc", "-F"),
        ),
    )
    json.dumps(outcome.observed)
    clamav = outcome.observed["clamav"]
    assert clamav["freshclam"] == {
        "conf": "/etc/clamav/freshclam.conf",
        "conf_present": True,
        "example": False,
        "checks": 24,
        "database_mirrors": ["db.local.clamav.net", "database.clamav.net"],
        "private_mirrors": [],
        "configured": True,
        "daemon_running": True,
        "service_enabled": True,
        "timer_enabled": False,
    }
    assert clamav["on_access"] == {
        "clamonacc_running": True,
        "configured": True,
        "include_paths": ["/home", "/srv"],
        "mount_paths": ["/var/www"],
    }
    # Of daily.cld (27450) and daily.cvd (25784) the newer counts; the broken bytecode.cvd is a gap.
    assert [(d["name"], d["version"]) for d in clamav["databases"]] == [("daily", 27450)]
    assert [g.what for g in outcome.gaps] == ["clamav.databases.bytecode"]
    assert "truncated ClamAV database header" in outcome.gaps[0].reason
    assert outcome.status is Status.PARTIAL
    # freshclam updates and clamonacc watches, but clamd refuses: nothing scans, on access or otherwise
    assert clamav["clamd"]["responding"] is False
    product = outcome.observed["products"][0]
    assert product["processes"] == ["clamonacc", "freshclam"]
    assert (product["running"], product["real_time_protection"], product["signature_time"]) == (
        False,
        False,
        "2026-11-25T09:24:01Z",
    )


def freshclam_only(root: Path, **extra: Any) -> Path:
    """Debian 12 after ``apt install clamav``: clamav-freshclam (updater) without clamav-daemon."""
    return make_tree(
        root,
        {
            "/usr/lib/systemd/system/clamav-freshclam.service": "[Service]\n",
            "/etc/clamav/freshclam.conf": FIX / "freshclam-conf_debian-12_clamav-freshclam-1.4.6.conf",
            "/etc/systemd/system/multi-user.target.wants/clamav-freshclam.service": "",
            "/var/lib/clamav/daily.cld": FIX / "cvd-header_crafted_daily-27450.bin",
            **extra,
        },
    )


FRESHCLAM_DAEMON = ("freshclam", "/usr/bin/freshclam", "-d", "--foreground=true")


def test_updater_alone_is_not_a_running_antivirus(tmp_path: Path) -> None:
    outcome = collect_with(context(freshclam_only(tmp_path)), procs(("systemd", "/sbin/init"), FRESHCLAM_DAEMON))
    product = outcome.observed["products"][0]
    assert (product["product"], product["installed"], product["processes"]) == ("clamav", True, ["freshclam"])
    assert (product["running"], product["real_time_protection"]) == (False, False)
    assert product["signature_time"] == "2026-11-25T09:24:01Z"  # fresh signatures, but nothing uses them
    clamav = outcome.observed["clamav"]
    assert clamav["freshclam"]["daemon_running"] is True  # the updater, reported on its own
    assert clamav["clamd"] == {
        "process_running": False,
        "address": None,
        "responding": False,
        "reason": "clamd is not installed: no /etc/clamav/clamd.conf, no /usr/sbin/clamd, no clamd process",
    }
    assert outcome.status is Status.COMPLETE, outcome.gaps  # nothing unseen: clamd is simply absent
    assert SPEC.summary(outcome.observed).startswith("ClamAV not running")


def test_clamd_process_without_a_known_socket_is_unknown_not_running(tmp_path: Path) -> None:
    """A clamd process whose socket is not known (no clamd.conf here) may or may not answer."""
    tree = freshclam_only(tmp_path)
    outcome = collect_with(context(tree), procs(FRESHCLAM_DAEMON, ("clamd", "/usr/sbin/clamd", "--foreground")))
    assert outcome.observed["products"][0]["running"] is None
    assert [g.what for g in outcome.gaps] == ["clamav.clamd"]
    # processes hidden (hidepid): clamd may run unseen, so "not installed" cannot be claimed either
    hidden = freshclam_only(tmp_path / "hidden", **{"/proc/mounts": "proc /proc proc rw,hidepid=2 0 0\n"})
    blind = collect_with(Context(root=hidden, settings=defaults(SPEC.settings), euid=1000), procs())
    assert blind.observed["products"][0]["running"] is None
    assert blind.observed["clamav"]["clamd"]["responding"] is None


def test_one_shot_freshclam_is_not_a_daemon(tmp_path: Path) -> None:
    tree = make_tree(
        tmp_path,
        {
            "/etc/clamav/clamd.conf": FIX / "clamd-conf_debian-12_clamav-daemon-1.4.6.conf",
            "/etc/clamav/freshclam.conf": FIX / "freshclam-conf_reconstructed_example-private-mirror.conf",
        },
    )
    outcome = collect_with(context(tree), procs(("freshclam", "/usr/bin/freshclam", "--quiet")))
    fresh = outcome.observed["clamav"]["freshclam"]
    assert (fresh["daemon_running"], fresh["example"], fresh["configured"], fresh["checks"]) == (False, True, False, 12)
    assert fresh["private_mirrors"] == ["mirror1.example.com", "mirror2.example.com"]


def test_malformed_clamd_conf_is_a_gap(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {"/etc/clamav/clamd.conf": FIX / "clamd-conf_malformed_tcpsocket.conf"})
    outcome = collect_with(context(tree), procs())
    whats = [g.what for g in outcome.gaps]
    assert whats == ["clamav.clamd_conf", "clamav.clamd"]
    assert outcome.observed["clamav"]["clamd"]["responding"] is None
    assert outcome.observed["clamav"]["on_access"]["configured"] is None
    assert outcome.observed["products"][0]["real_time_protection"] is None


class FakeMdatp:
    """Replays captured ``mdatp health --output json`` output through the context's runner."""

    def __init__(self, stdout: bytes, returncode: int = 0, stderr: bytes = b"") -> None:
        self.stdout, self.returncode, self.stderr = stdout, returncode, stderr
        self.calls: List[List[str]] = []

    def __call__(self, argv: Sequence[str], **kwargs: Any) -> CommandResult:
        self.calls.append(list(argv))
        return CommandResult(argv, self.returncode, self.stdout, self.stderr)


def mdatp_ctx(tmp_path: Path, run: FakeMdatp) -> Context:
    tree = make_tree(tmp_path, {"/usr/bin/mdatp": "", "/lib/systemd/system/mdatp.service": "[Service]\n"})
    return Context(root=tree, settings=defaults(SPEC.settings), run=run)


def test_defender_healthy(tmp_path: Path) -> None:
    run = FakeMdatp((FIX / "mdatp-health-json_reconstructed_mdatp-101.25042_healthy.json").read_bytes())
    outcome = collect_with(mdatp_ctx(tmp_path, run), procs(("wdavdaemon", "/opt/microsoft/mdatp/sbin/wdavdaemon")))
    assert run.calls == [["/usr/bin/mdatp", "health", "--output", "json"]]
    assert outcome.status is Status.COMPLETE, outcome.gaps
    product = outcome.observed["products"][0]
    assert {
        k: product[k] for k in ("product", "installed", "running", "version", "signature_time", "real_time_protection")
    } == {
        "product": "mdatp",
        "installed": True,
        "running": True,
        "version": "101.25042.0000",
        "signature_time": "2025-11-25T09:24:01Z",
        "real_time_protection": True,
    }
    mdatp = outcome.observed["mdatp"]
    assert (mdatp["healthy"], mdatp["licensed"], mdatp["definitions_version"], mdatp["definitions_status"]) == (
        True,
        True,
        "1.441.206.0",
        "upToDate",
    )
    assert SPEC.summary(outcome.observed) == (
        "Microsoft Defender for Endpoint running, signatures 2025-11-25T09:24:01Z, real-time on"
    )


def test_defender_unhealthy(tmp_path: Path) -> None:
    run = FakeMdatp((FIX / "mdatp-health-json_reconstructed_mdatp-101.25042_unhealthy-rtp-off.json").read_bytes())
    outcome = collect_with(mdatp_ctx(tmp_path, run), procs())
    mdatp = outcome.observed["mdatp"]
    assert (mdatp["healthy"], mdatp["real_time_protection_enabled"]) == (False, False)
    assert mdatp["health_issues"] == ["no active event provider", "definitions out of date"]
    assert mdatp["definitions_updated"] == "2020-03-04T12:03:49.305000Z"
    assert outcome.observed["products"][0]["running"] is False


@pytest.mark.parametrize(
    ("run", "reason"),
    [
        (
            FakeMdatp(b"", 1, b"ERROR: The daemon is not running\n"),
            "mdatp exited with status 1: ERROR: The daemon is not running",
        ),
        (
            FakeMdatp((FIX / "mdatp-health-text_ubuntu-20.04_mdatp-101.02.55_unlicensed.txt").read_bytes()),
            "mdatp health output is not JSON: Expecting value at line 1",
        ),
    ],
)
def test_defender_unreadable_is_a_gap(tmp_path: Path, run: FakeMdatp, reason: str) -> None:
    outcome = collect_with(mdatp_ctx(tmp_path, run), procs())
    assert outcome.status is Status.PARTIAL
    assert [(g.what, g.reason) for g in outcome.gaps] == [("mdatp.health", reason)]
    assert outcome.observed["mdatp"] == {"command": "/usr/bin/mdatp", "health_read": False}
    product = outcome.observed["products"][0]
    assert (product["version"], product["real_time_protection"]) == (None, None)


def test_mdatp_not_installed_runs_no_command(tmp_path: Path) -> None:
    run = FakeMdatp(b"{}")
    ctx = Context(root=make_tree(tmp_path), settings=defaults(SPEC.settings), run=run)
    collect_with(ctx, procs())
    assert run.calls == []


def test_real_process_pass_sees_this_process() -> None:
    me = next(p for p in read_system.list_processes(frozenset({"freshclam"})) if p.pid == os.getpid())
    assert me.name.startswith("python") or "pytest" in me.name
    assert me.cmdline == ()  # command lines are read only for the names asked for
    me_full = next(p for p in read_system.list_processes(None) if p.pid == os.getpid())
    assert any("pytest" in part for part in me_full.cmdline)


def test_settings_schema() -> None:
    settings = defaults(SPEC.settings)
    assert settings["clamd_conf"] == "/etc/clamav/clamd.conf"
    assert settings["socket_timeout"] == 2.0
    with pytest.raises(SettingsError) as err:
        validate({"socket_timeout": "fast"}, SPEC.settings, "collectors.antivirus")
    assert err.value.key == "collectors.antivirus.socket_timeout"
    with pytest.raises(SettingsError) as err:
        validate({"clamd_sock": "/x"}, SPEC.settings, "collectors.antivirus")
    assert err.value.key == "collectors.antivirus.clamd_sock"


def test_bad_clamd_tcp_setting_is_a_gap(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {"/etc/clamav/clamd.conf": ""})
    outcome = collect_with(context(tree, clamd_tcp="localhost"), procs())
    assert ("clamav.clamd", "setting clamd_tcp is not host:port: 'localhost'") in [
        (g.what, g.reason) for g in outcome.gaps
    ]


def test_spec_and_watch_paths() -> None:
    assert SPEC.name == "antivirus" and SPEC.controls == ("M03",)
    assert list(SPEC.watch_paths(defaults(SPEC.settings))) == [
        "/etc/clamav/clamd.conf",
        "/etc/clamav/freshclam.conf",
        "/var/lib/clamav/daily.cld",
        "/var/lib/clamav/daily.cvd",
    ]
