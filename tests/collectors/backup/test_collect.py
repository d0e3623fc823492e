"""The backup collector against real restic and borg repositories made by the test in a temp dir."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

from collectors.backup import SPEC
from collectors.backup.read_backup import borg_base_dir
from collectors.base import Context
from collectors.settings import SettingsError, validate
from evidence.model import Status
from tests.collectors.backup.helpers import restic_two_hosts, run_tool, tool_env
from tests.conftest import FIXTURES, require_root, require_tool
from tests.evidence.shipped import judge_shipped


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """restic repo with snapshots at chosen times; borg repokey and unencrypted repos."""
    restic = require_tool("restic")
    borg = require_tool("borg")
    base = tmp_path_factory.mktemp("backup-repos")
    restic_two_hosts(restic, base)
    (base / "wrong").write_text("not the password\n")
    benv = tool_env(base, BORG_PASSCOMMAND=f"cat {base / 'password'}")
    run_tool([borg, "init", "--encryption=repokey", str(base / "borg-enc")], benv)
    run_tool(
        [borg, "create", "--timestamp", "2026-11-20T10:00:00", f"{base / 'borg-enc'}::first", str(base / "data")], benv
    )
    run_tool(
        [borg, "create", "--timestamp", "2026-11-21T11:30:00", f"{base / 'borg-enc'}::second", str(base / "data")], benv
    )
    run_tool([borg, "init", "--encryption=none", str(base / "borg-plain")], tool_env(base))
    run_tool(
        [borg, "create", "--timestamp", "2026-11-18T08:00:00", f"{base / 'borg-plain'}::only", str(base / "data")],
        tool_env(base),
    )
    return base


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A captured filesystem root: the mount table of a node with an NFS backup mount."""
    (tmp_path / "proc/self").mkdir(parents=True)
    shutil.copy(FIXTURES / "backup/mountinfo_debian-12_nfs4-backup-mount.txt", tmp_path / "proc/self/mountinfo")
    (tmp_path / "var/lib/tillsyn/restore-tests").mkdir(parents=True)
    return tmp_path


def collect(root: Path, repos: Path, backups: List[Dict[str, Any]], hostname: str = "n1", **top: Any) -> Any:
    """Collect as node ``hostname`` (n1 and n2 wrote the restic repository's snapshots)."""
    settings = validate(
        {"backups": backups, "borg_base_dir": str(repos / "agent-borg"), **top}, SPEC.settings, "collectors.backup"
    )
    return SPEC.collect(Context(root=root, settings=settings, hostname=hostname))


def restic_item(repos: Path, **over: Any) -> Dict[str, Any]:
    item = {
        "name": "files",
        "type": "restic",
        "repository": str(repos / "restic"),
        "password_file": str(repos / "password"),
    }
    item.update(over)
    return item


def test_nothing_configured_is_not_present(root: Path, repos: Path) -> None:
    outcome = SPEC.collect(Context(root=root, settings=validate({}, SPEC.settings, "x")))
    assert outcome.status is Status.NOT_PRESENT
    assert outcome.gaps[0].reason == "no backup configured in agent.yaml (collectors.backup.backups is empty)"


def test_restic_last_snapshot_time_and_restore_test(root: Path, repos: Path) -> None:
    shutil.copy(
        FIXTURES / "backup/restore-test_tillsyn-format_passed.json", root / "var/lib/tillsyn/restore-tests/files.json"
    )
    outcome = collect(root, repos, [restic_item(repos)])
    entry = outcome.observed["backups"][0]
    assert outcome.status is Status.COMPLETE, outcome.gaps
    assert entry["status"] == "ok"
    assert entry["last_success_at"] == "2026-11-20T10:00:00Z"
    assert entry["last_backup"]["hostname"] == "n1"
    assert entry["last_backup"]["paths"] == [str(repos / "data")]
    assert entry["encrypted"] is True
    # The captured mount table has / on ext4: a repository there is on this node.
    assert entry["separate"] is False
    assert entry["restore_test"] == {
        "tested_at": "2026-11-21T04:00:00Z",
        "result": "passed",
        "snapshot": "376dbe49",
        "files_checked": 1532,
        "detail": "restored /etc into /tmp/rt and compared sha256 sums",
    }
    assert SPEC.summary(outcome.observed) == "files restic 2026-11-20T10:00:00Z enc ON HOST"


def test_restic_host_filter(root: Path, repos: Path) -> None:
    entry = collect(root, repos, [restic_item(repos, host="n2")]).observed["backups"][0]
    assert entry["last_success_at"] == "2026-11-19T10:00:00Z"
    assert entry["last_backup"]["hostname"] == "n2"


def test_restic_in_a_shared_repository_reads_this_nodes_snapshots_only(root: Path, repos: Path) -> None:
    """n2's backups stopped on 2026-11-19; n1's newer snapshot in the same repository is not n2's."""
    outcome = collect(root, repos, [restic_item(repos)], hostname="n2")
    entry = outcome.observed["backups"][0]
    assert (entry["last_success_at"], entry["last_backup"]["hostname"]) == ("2026-11-19T10:00:00Z", "n2")
    # judged 3 h after n1's backup: n2's is 27 h old, and n1's no longer hides that
    at = datetime(2026, 11, 20, 13, 0, tzinfo=timezone.utc)
    assert judge_shipped("backup", outcome, at)["backup-recent"] == "failing"
    outcome = collect(root, repos, [restic_item(repos)], hostname="web07")  # never backed up here
    assert outcome.observed["backups"][0]["last_success_at"] is None
    assert judge_shipped("backup", outcome, at)["backup-recent"] == "unknown"
    assert (
        "backup files: last backup",
        f"no snapshots in {repos / 'restic'} for host web07",
    ) in [(g.what, g.reason) for g in outcome.gaps]


def test_restic_wrong_password(root: Path, repos: Path) -> None:
    outcome = collect(root, repos, [restic_item(repos, password_file=str(repos / "wrong"))])
    entry = outcome.observed["backups"][0]
    assert outcome.status is Status.PARTIAL
    assert entry["status"] == "error"
    assert entry["reason"] == (
        f"wrong password: restic could not open {repos / 'restic'} with the password in {repos / 'wrong'}"
    )
    assert entry["last_success_at"] is None and entry["encrypted"] is None
    assert any(g.what == "backup files: last backup and encryption" for g in outcome.gaps)


def test_restic_missing_repository(root: Path, repos: Path) -> None:
    entry = collect(root, repos, [restic_item(repos, repository=str(repos / "absent"))]).observed["backups"][0]
    assert entry["reason"] == f"repository does not exist: no restic repository at {repos / 'absent'}"


def test_missing_binary_is_not_present_for_that_backup_only(root: Path, repos: Path) -> None:
    outcome = collect(
        root,
        repos,
        [restic_item(repos), {"name": "b", "type": "borg", "repository": str(repos / "borg-plain")}],
        restic_binary=str(repos / "no-such-restic"),
    )
    first, second = outcome.observed["backups"]
    assert outcome.status is Status.PARTIAL
    assert first["status"] == "not_present"
    assert first["reason"] == f"restic is not installed (restic_binary '{repos / 'no-such-restic'}' not found)"
    assert second["status"] == "ok"
    assert outcome.observed["readable"] == 1


def test_borg_encrypted_repo_and_missing_restore_test(root: Path, repos: Path) -> None:
    outcome = collect(
        root,
        repos,
        [
            {
                "name": "db",
                "type": "borg",
                "repository": str(repos / "borg-enc"),
                "password_file": str(repos / "password"),
            }
        ],
    )
    entry = outcome.observed["backups"][0]
    assert entry["last_success_at"] == "2026-11-21T11:30:00Z"
    assert entry["last_backup"]["archive"] == "second"
    assert (entry["encrypted"], entry["encryption"]) == (True, "repokey")
    assert entry["restore_test"] is None
    assert [(g.what, g.reason) for g in outcome.gaps] == [
        ("backup db: restore test", "no restore test recorded: /var/lib/tillsyn/restore-tests/db.json does not exist")
    ]


def test_borg_unencrypted_repo(root: Path, repos: Path) -> None:
    entry = collect(root, repos, [{"name": "plain", "type": "borg", "repository": str(repos / "borg-plain")}]).observed[
        "backups"
    ][0]
    assert (entry["encrypted"], entry["encryption"]) == (False, "none")
    assert entry["last_success_at"] == "2026-11-18T08:00:00Z"


def test_borg_wrong_password_and_missing_repository(root: Path, repos: Path) -> None:
    outcome = collect(
        root,
        repos,
        [
            {"name": "a", "type": "borg", "repository": str(repos / "borg-enc"), "password_file": str(repos / "wrong")},
            {"name": "b", "type": "borg", "repository": str(repos / "nothing-here")},
        ],
    )
    first, second = outcome.observed["backups"]
    assert first["reason"] == (
        f"wrong password: borg could not open {repos / 'borg-enc'} with the password in {repos / 'wrong'}"
    )
    assert second["reason"] == f"repository does not exist: no borg repository at {repos / 'nothing-here'}"


def test_malformed_restore_test_is_a_gap(root: Path, repos: Path) -> None:
    shutil.copy(
        FIXTURES / "backup/restore-test_malformed_bad-result.json", root / "var/lib/tillsyn/restore-tests/files.json"
    )
    outcome = collect(root, repos, [restic_item(repos)])
    assert outcome.observed["backups"][0]["restore_test"] is None
    assert [g.reason for g in outcome.gaps] == [
        "/var/lib/tillsyn/restore-tests/files.json: restore-test record: result must be one of passed, failed, got 'ok'"
    ]


def test_marker_on_nfs_mount_is_separate(root: Path, repos: Path) -> None:
    (root / "var/lib/pgbackup").mkdir(parents=True)
    shutil.copy(FIXTURES / "backup/marker_tillsyn-format_success.json", root / "var/lib/pgbackup/last.json")
    outcome = collect(root, repos, [{"name": "pg", "type": "marker", "marker": "/var/lib/pgbackup/last.json"}])
    entry = outcome.observed["backups"][0]
    assert entry["last_success_at"] == "2026-11-20T03:12:44Z"
    assert entry["repository"] == "/mnt/backup/pg"
    assert entry["separate"] is True
    assert "nfs4 mount of nas01.example.net:/export/backup" in entry["separate_reason"]
    assert entry["encrypted"] is True


@pytest.mark.parametrize(
    ("mountinfo", "why"),
    [
        # The lines it could read put the repository on "/"; a table read in part must not say so.
        ("26 1 254:1 / / rw - ext4 /dev/vda1 rw\ngarbage line\n", "mountinfo line 2: no ' - ' separator"),
        (None, "/proc/self/mountinfo does not exist"),
    ],
)
def test_unreadable_mount_table_makes_separation_unknown(root: Path, mountinfo: Optional[str], why: str) -> None:
    if mountinfo is None:
        (root / "proc/self/mountinfo").unlink()
    else:
        (root / "proc/self/mountinfo").write_text(mountinfo)
    (root / "var/lib/pgbackup").mkdir(parents=True)
    shutil.copy(FIXTURES / "backup/marker_tillsyn-format_success.json", root / "var/lib/pgbackup/last.json")
    outcome = collect(root, root, [{"name": "pg", "type": "marker", "marker": "/var/lib/pgbackup/last.json"}])
    entry = outcome.observed["backups"][0]
    assert (entry["separate"], entry["separate_reason"]) == (None, f"mount table unreadable: {why}")
    assert outcome.status is Status.PARTIAL
    assert (
        "backup pg: separation",
        f"cannot read /proc/self/mountinfo to see where the path lives: {why}",
    ) in [(g.what, g.reason) for g in outcome.gaps]
    assert SPEC.summary(outcome.observed) == "pg marker 2026-11-20T03:12:44Z enc where ?"


def test_empty_marker_uses_mtime_and_missing_marker_says_so(root: Path, repos: Path) -> None:
    (root / "var/lib/job").mkdir(parents=True)
    (root / "var/lib/job/done").write_bytes(b"")
    os.utime(root / "var/lib/job/done", (1795168800, 1795168800))  # 2026-11-20T10:00:00Z
    outcome = collect(
        root,
        repos,
        [
            {"name": "m", "type": "marker", "marker": "/var/lib/job/done", "repository": "sftp:u@h.example:/b"},
            {"name": "gone", "type": "marker", "marker": "/var/lib/job/never"},
        ],
    )
    first, second = outcome.observed["backups"]
    assert first["last_success_at"] == "2026-11-20T10:00:00Z"
    assert first["last_backup"]["source"] == "mtime"
    assert first["separate"] is True
    assert second["reason"] == "marker file /var/lib/job/never does not exist (the backup job has not written it)"


def test_veeam_from_a_stand_in_binary(root: Path, repos: Path, tmp_path: Path) -> None:
    """veeamconfig cannot run here: a script prints the documented table, the real runner runs it."""
    fake = tmp_path / "veeamconfig"
    fixture = FIXTURES / "backup/veeamconfig-session-list_veeam-agent-linux-6_two-jobs.txt"
    fake.write_text(f"#!/bin/sh\ncat '{fixture}'\n")
    fake.chmod(0o755)
    outcome = collect(
        root,
        repos,
        [{"name": "sys", "type": "veeam", "job": "Daily system", "repository": "//nas01/veeam"}],
        veeamconfig_binary=str(fake),
    )
    entry = outcome.observed["backups"][0]
    assert entry["status"] == "ok"
    # //nas01/veeam is an SMB share, not a path below / (the node's ext4 root in this mount table)
    assert (entry["separate"], entry["separate_reason"]) == (True, "remote repository (smb) on nas01")
    assert entry["last_backup"]["state"] == "Running"
    assert entry["encrypted"] is None
    assert any(g.what == "backup sys: encryption" for g in outcome.gaps)
    assert entry["last_success_at"] is not None and entry["last_success_at"].startswith("2026-11-18")


def test_config_errors_are_per_backup_and_schema_names_the_key(root: Path, repos: Path) -> None:
    outcome = collect(
        root,
        repos,
        [
            {"name": "x", "type": "restic", "repository": "/r"},
            {"name": "y", "type": "borg", "repository": "/r", "env": {"BORG_PASSPHRASE": "hunter2"}},
        ],
    )
    first, second = outcome.observed["backups"]
    assert first["reason"] == "a restic backup needs 'password_file' in agent.yaml"
    assert second["reason"].startswith("env BORG_PASSPHRASE looks like a secret")
    with pytest.raises(SettingsError, match=r"collectors\.backup\.backups\[0\]\.type"):
        validate({"backups": [{"name": "z", "type": "tape"}]}, SPEC.settings, "collectors.backup")


def test_watch_paths() -> None:
    settings = validate(
        {"backups": [{"name": "pg", "type": "marker", "marker": "/var/lib/pg/last.json"}]},
        SPEC.settings,
        "collectors.backup",
    )
    assert list(SPEC.watch_paths(settings)) == ["/var/lib/pg/last.json", "/var/lib/tillsyn/restore-tests/pg.json"]
    # with --state-dir the watched record is the one the collector reads
    assert list(SPEC.watch_paths(settings, Path("/srv/agent"))) == [
        "/var/lib/pg/last.json",
        "/srv/agent/restore-tests/pg.json",
    ]


@pytest.fixture
def read_only(repos: Path, tmp_path: Path) -> Iterator[Path]:
    """The encrypted borg repository seen through a read-only bind mount (an NFS export mounted
    ro, or ProtectSystem=strict under the shipped unit): nothing can be written there, not a lock."""
    require_root("a read-only bind mount")
    mount = require_tool("mount")
    target = tmp_path / "ro-repo"
    target.mkdir()
    subprocess.run([mount, "--bind", str(repos / "borg-enc"), str(target)], check=True, timeout=30)
    try:
        subprocess.run([mount, "-o", "remount,ro,bind", str(target)], check=True, timeout=30)
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=False, timeout=30)


def test_borg_lists_a_repository_it_may_only_read(root: Path, repos: Path, read_only: Path, tmp_path: Path) -> None:
    with pytest.raises(OSError):
        (read_only / "probe").write_text("x")  # truly read-only, even for root
    outcome = collect(
        root,
        repos,
        [{"name": "ro", "type": "borg", "repository": str(read_only), "password_file": str(repos / "password")}],
        borg_base_dir=str(tmp_path / "base"),  # a node that has not seen the repository elsewhere
    )
    entry = outcome.observed["backups"][0]
    assert entry.get("reason") is None, entry
    assert entry["last_success_at"] == "2026-11-21T11:30:00Z"


def test_borg_base_dir_defaults_to_the_services_state_directory() -> None:
    assert borg_base_dir("/srv/borg", {"STATE_DIRECTORY": "/var/lib/tillsyn"}) == "/srv/borg"
    assert borg_base_dir(None, {"STATE_DIRECTORY": "/var/lib/tillsyn:/var/lib/other"}) == "/var/lib/tillsyn/borg"
    assert borg_base_dir(None, {}) is None  # borg's own default: the user's home


def test_paths_follow_the_state_directory(root: Path, repos: Path, tmp_path: Path) -> None:
    """With --state-dir, restore-test records and borg's base directory live in that directory."""
    state = Path("/srv/tillsyn-state")
    assert borg_base_dir(None, {"STATE_DIRECTORY": "/var/lib/tillsyn"}, state) == "/srv/tillsyn-state/borg"
    assert borg_base_dir("/srv/borg", {}, state) == "/srv/borg"
    (root / "srv/tillsyn-state/restore-tests").mkdir(parents=True)
    shutil.copy(
        FIXTURES / "backup/restore-test_tillsyn-format_passed.json",
        root / "srv/tillsyn-state/restore-tests/files.json",
    )
    settings = validate({"backups": [restic_item(repos)]}, SPEC.settings, "collectors.backup")
    assert settings["restore_test_dir"] is None
    outcome = SPEC.collect(Context(root=root, settings=settings, hostname="n1", state_dir=state))
    entry = outcome.observed["backups"][0]
    assert entry["restore_test_path"] == "/srv/tillsyn-state/restore-tests/files.json"
    assert entry["restore_test"]["result"] == "passed"
    # without a state directory (a caller that has none), the packaged one
    plain = SPEC.collect(Context(root=root, settings=settings, hostname="n1"))
    assert plain.observed["backups"][0]["restore_test_path"] == "/var/lib/tillsyn/restore-tests/files.json"
