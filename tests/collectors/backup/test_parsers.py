"""Table-driven tests of the pure backup parsers over captured and documented samples."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import List, Optional

import pytest

from collectors.backup import parse_borg, parse_restic, parse_veeam
from collectors.backup.location import classify, scrub, separation
from collectors.backup.parse_markers import parse_marker, parse_restore_test
from collectors.backup.parse_times import parse_naive, parse_rfc3339
from collectors.mounts import MountEntry, MountinfoFormatError, parse_mountinfo
from tests.conftest import FIXTURES

DIR = FIXTURES / "backup"
UTC = timezone.utc


def read(name: str) -> str:
    return (DIR / name).read_text()


def test_rfc3339_with_nanoseconds_and_offset() -> None:
    assert parse_rfc3339("2026-11-23T10:00:00.123456789+01:00") == datetime(2026, 11, 23, 9, 0, 0, 123456, UTC)
    with pytest.raises(ValueError, match="with a zone"):
        parse_rfc3339("2026-11-23T10:00:00")


def test_naive_time_in_given_zone() -> None:
    assert parse_naive("2026-11-20 22:14", UTC) == datetime(2026, 11, 20, 22, 14, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fixture", "count", "latest_time", "latest_host"),
    [
        (
            "restic-snapshots-json_debian-12_restic-0.14.0_two-hosts.json",
            3,
            datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
            "n1",
        ),
        ("restic-snapshots-json_debian-12_restic-0.14.0_no-snapshots.json", 0, None, None),
    ],
)
def test_restic_snapshots(
    fixture: str, count: int, latest_time: Optional[datetime], latest_host: Optional[str]
) -> None:
    listing = parse_restic.parse_snapshots(read(fixture))
    assert len(listing.snapshots) == count
    latest = listing.latest
    assert (latest.time if latest else None) == latest_time
    assert (latest.hostname if latest else None) == latest_host
    if latest:
        assert latest.short_id == "e3ff68b9"
        assert latest.paths == ["/tmp/rx/data"]


@pytest.mark.parametrize("text", [read("restic-snapshots-json_malformed_id-not-string.json"), "[{}]", "{", "7"])
def test_restic_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="restic"):
        parse_restic.parse_snapshots(text)


@pytest.mark.parametrize(
    ("fixture", "code", "expected"),
    [
        (
            "restic-stderr_debian-12_restic-0.14.0_wrong-password.txt",
            1,
            "wrong password: restic could not open R with the password in P",
        ),
        (
            "restic-stderr_debian-12_restic-0.14.0_missing-repository.txt",
            1,
            "repository does not exist: no restic repository at R",
        ),
        (
            "restic-stderr_debian-12_restic-0.14.0_connection-refused.txt",
            1,
            "cannot open repository R: Fatal: unable to open config file: client.Head: Head "
            '"http://127.0.0.1:9/x/config": dial tcp 127.0.0.1:9: connect: connection refused',
        ),
    ],
)
def test_restic_failure_reasons(fixture: str, code: int, expected: str) -> None:
    assert parse_restic.explain_failure(read(fixture), code, "R", "P") == expected


@pytest.mark.parametrize(
    ("fixture", "archive", "when", "mode", "encrypted"),
    [
        (
            "borg-list-json_debian-12_borg-1.2.4_repokey.json",
            "tz",
            datetime(2026, 11, 22, 10, tzinfo=UTC),
            "repokey",
            True,
        ),
        (
            "borg-list-json_debian-12_borg-1.2.4_encryption-none.json",
            "x",
            datetime(2026, 11, 21, 10, tzinfo=UTC),
            "none",
            False,
        ),
        ("borg-list-json_debian-12_borg-1.2.4_empty.json", None, None, "none", False),
    ],
)
def test_borg_list(fixture: str, archive: Optional[str], when: Optional[datetime], mode: str, encrypted: bool) -> None:
    listing = parse_borg.parse_list(read(fixture))
    assert (listing.latest.name if listing.latest else None) == archive
    assert (listing.latest.time if listing.latest else None) == when
    assert listing.encryption_mode == mode
    assert listing.encrypted is encrypted


def test_borg_authenticated_mode_is_not_encrypted_and_checkpoints_are_skipped() -> None:
    text = (
        '{"archives": [{"name": "a.checkpoint", "id": "1", "start": "2026-11-23T00:00:00.000000"},'
        ' {"name": "a", "id": "2", "start": "2026-11-22T00:00:00.000000"}],'
        ' "encryption": {"mode": "authenticated-blake2"}}'
    )
    listing = parse_borg.parse_list(text)
    assert listing.encrypted is False
    assert listing.latest is not None and listing.latest.name == "a"


@pytest.mark.parametrize("text", [read("borg-list-json_malformed_truncated.json"), "[]", '{"archives": [1]}'])
def test_borg_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="borg"):
        parse_borg.parse_list(text)


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (
            "borg-stderr_debian-12_borg-1.2.4_wrong-password.txt",
            "wrong password: borg could not open R with the password in P",
        ),
        (
            "borg-stderr_debian-12_borg-1.2.4_missing-repository.txt",
            "repository does not exist: no borg repository at R",
        ),
        (
            "borg-stderr_debian-12_borg-1.2.4_password-file-missing.txt",
            "password file P could not be read: passcommand supplied in BORG_PASSCOMMAND failed: "
            "Command '['cat', '/tmp/rx/nopw']' returned non-zero exit status 1.",
        ),
        (  # the home directory read-only (ProtectHome= under systemd) and no borg_base_dir set
            "borg-stderr_debian-12_borg-1.2.4_read-only-base-dir.txt",
            "borg could not write its cache and security files for R (Error: [Errno 30] Read-only file system: "
            "'/root/.config'): set borg_base_dir to a writable directory",
        ),
    ],
)
def test_borg_failure_reasons(fixture: str, expected: str) -> None:
    assert parse_borg.explain_failure(read(fixture), 2, "R", "P") == expected


def test_veeam_session_list() -> None:
    sessions = parse_veeam.parse_session_list(read("veeamconfig-session-list_veeam-agent-linux-6_two-jobs.txt"), UTC)
    assert len(sessions) == 5
    assert sessions[2].job == "etc-files" and sessions[2].state == "Warning"
    assert sessions[4].finished_at is None
    daily = parse_veeam.backup_sessions(sessions, "Daily system")
    assert [s.state for s in daily] == ["Success", "Failed", "Running"]
    best = parse_veeam.last_success(daily)
    assert best is not None and best.finished_at == datetime(2026, 11, 18, 22, 14, tzinfo=UTC)
    assert best.id == "9d0f7e2c-3b61-4a53-9a35-0c6b4c6f1a01"
    newest_any = parse_veeam.last_success(parse_veeam.backup_sessions(sessions, None))
    assert newest_any is not None and newest_any.job == "etc-files"


@pytest.mark.parametrize(
    ("text", "count"),
    [(read("veeamconfig-session-list_veeam-agent-linux-6_no-sessions.txt"), 0), ("", 0)],
)
def test_veeam_absent(text: str, count: int) -> None:
    assert len(parse_veeam.parse_session_list(text, UTC)) == count


@pytest.mark.parametrize("text", [read("veeamconfig-session-list_malformed_truncated-row.txt"), "Error: no access\n"])
def test_veeam_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="veeamconfig session list"):
        parse_veeam.parse_session_list(text, UTC)


MTIME = datetime(2026, 11, 19, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fixture", "result", "last_success", "encrypted", "source"),
    [
        ("marker_tillsyn-format_success.json", "success", datetime(2026, 11, 20, 3, 12, 44, tzinfo=UTC), True, "json"),
        ("marker_tillsyn-format_failed.json", "failed", datetime(2026, 11, 20, 3, 12, 44, tzinfo=UTC), None, "json"),
        ("marker_tillsyn-format_empty-touch.json", "success", MTIME, None, "mtime"),
    ],
)
def test_marker(fixture: str, result: str, last_success: datetime, encrypted: Optional[bool], source: str) -> None:
    marker = parse_marker((DIR / fixture).read_bytes(), MTIME)
    assert (marker.result, marker.last_success_at, marker.encrypted, marker.source) == (
        result,
        last_success,
        encrypted,
        source,
    )


def test_failed_marker_keeps_its_own_time() -> None:
    marker = parse_marker((DIR / "marker_tillsyn-format_failed.json").read_bytes(), MTIME)
    assert marker.finished_at == datetime(2026, 11, 21, 2, 5, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ((DIR / "marker_malformed_plain-text.json").read_bytes(), "marker is not JSON"),
        (b'{"result": "success"}', "finished_at is missing"),
        (b'{"finished_at": "2026-11-20T03:12:44Z", "result": "ok"}', "result must be one of success, failed"),
        (b'{"finished_at": "2026-11-20T03:12:44Z", "result": "success", "encrypted": "yes"}', "encrypted must be bool"),
    ],
)
def test_marker_malformed(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_marker(data, MTIME)


def test_restore_test_record() -> None:
    record = parse_restore_test((DIR / "restore-test_tillsyn-format_passed.json").read_bytes())
    assert record.tested_at == datetime(2026, 11, 21, 4, tzinfo=UTC)
    assert (record.result, record.snapshot, record.files_checked) == ("passed", "376dbe49", 1532)


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("restore-test_malformed_bad-result.json", "result must be one of passed, failed, got 'ok'"),
        ("restore-test_malformed_no-zone.json", "tested_at: not an RFC 3339 time with a zone"),
    ],
)
def test_restore_test_malformed(fixture: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_restore_test((DIR / fixture).read_bytes())


@pytest.mark.parametrize(
    ("repository", "kind", "scheme", "host"),
    [
        ("/srv/restic", "local", None, None),
        ("local:/srv/restic", "local", "local", None),
        ("file:///srv/borg", "local", "file", None),
        ("relative/repo", "local", None, None),
        ("sftp:backup@nas01.example.net:/srv/restic", "remote", "sftp", "nas01.example.net"),
        ("sftp://backup@nas01.example.net:2222//srv/restic", "remote", "sftp", "nas01.example.net"),
        ("rest:https://user:pw@backup.example.net:8000/node1/", "remote", "rest", "backup.example.net"),
        ("s3:s3.eu-north-1.amazonaws.com/bucket/node1", "remote", "s3", "s3.eu-north-1.amazonaws.com"),
        ("b2:bucket:node1", "remote", "b2", None),
        ("ssh://borg@backup.example.net:22/./repo", "remote", "ssh", "backup.example.net"),
        ("borg@backup.example.net:repo", "remote", "ssh", "backup.example.net"),
        ("backup.example.net:/srv/borg", "remote", "ssh", "backup.example.net"),
    ],
)
def test_classify(repository: str, kind: str, scheme: Optional[str], host: Optional[str]) -> None:
    location = classify(repository)
    assert (location.kind, location.scheme, location.host) == (kind, scheme, host)


@pytest.mark.parametrize(
    ("repository", "host"),
    [
        ("rest:http://127.0.0.1:8000/web01", "127.0.0.1"),
        ("sftp:backup@localhost:/srv/restic/web01", "localhost"),
        ("s3:http://localhost:9000/backups", "localhost"),
        ("ssh://borg@[::1]/./web01", "::1"),
        ("localhost:/srv/borg/web01", "localhost"),
        ("ssh://borg@[::ffff:127.0.0.2]:2222/./web01", "::ffff:127.0.0.2"),
        ("sftp:backup@127.1:/srv/restic", "127.1"),  # inet_aton(3) form of 127.0.0.1
        ("rest:http://backup.localhost:8000/", "backup.localhost"),  # RFC 6761
        ("borg@0.0.0.0:repo", "0.0.0.0"),
    ],
)
def test_a_remote_location_on_loopback_is_this_node(repository: str, host: str) -> None:
    separate, reason = separation(classify(repository), None, "", "web01")
    assert separate is False
    assert reason.endswith(f" on {host}: a loopback address, this node itself")


def test_a_remote_location_named_like_this_node_is_unknown() -> None:
    for repository in ("sftp:backup@web01:/srv/restic", "ssh://borg@WEB01.example.net/./r", "//web01/veeam"):
        separate, reason = separation(classify(repository, shares=True), None, "", "web01")
        assert separate is None, repository
        assert "this node's own name (web01), so maybe this node" in reason
    assert separation(classify("sftp:backup@web02:/srv/restic"), None, "", "web01") == (
        True,
        "remote repository (sftp) on web02",
    )


@pytest.mark.parametrize(
    ("repository", "shares", "kind", "host", "path"),
    [
        ("//nas01/veeam", True, "remote", "nas01", "veeam"),  # the Veeam example of docs/collectors/backup.md
        ("\\\\nas01\\veeam\\daily", True, "remote", "nas01", "veeam\\daily"),
        ("//srv/restic", False, "local", None, "/srv/restic"),  # restic and borg open it as /srv/restic
        ("local:////srv//restic", False, "local", None, "/srv/restic"),
    ],
)
def test_smb_shares_and_double_slashes(
    repository: str, shares: bool, kind: str, host: Optional[str], path: str
) -> None:
    location = classify(repository, shares=shares)
    assert (location.kind, location.host, location.path) == (kind, host, path)


def test_scrub_hides_url_password() -> None:
    assert scrub("rest:https://user:pw@backup.example.net:8000/x") == "rest:https://user:***@backup.example.net:8000/x"


@pytest.mark.parametrize(
    ("path", "separate", "reason_part"),
    [
        ("/mnt/backup/pg", True, "nfs4 mount of nas01.example.net:/export/backup"),
        ("/mnt/smb/x", True, "cifs mount of //fileserver/backup"),
        ("/srv/local backups/pg", False, "ext4 /dev/vdb1 mounted at /srv/local backups"),
        ("/mnt/backupx", False, "ext4 /dev/vda1 mounted at /"),
    ],
)
def test_separation_from_mounts(path: str, separate: bool, reason_part: str) -> None:
    mounts = parse_mountinfo(read("mountinfo_debian-12_nfs4-backup-mount.txt"))
    decided, reason = separation(classify(path), mounts)
    assert decided is separate
    assert reason_part in reason


def _on(fstype: str, source: str) -> List[MountEntry]:
    return parse_mountinfo(f"26 1 254:1 / / rw - ext4 /dev/vda1 rw\n70 26 0:60 / /mnt/repo rw - {fstype} {source} rw\n")


@pytest.mark.parametrize(
    ("fstype", "source"),
    [
        ("afs", "#example.net:root.cell."),
        ("sshfs", "backup@nas01.example.net:/srv/backup"),
        ("fuse.sshfs", "backup@nas01.example.net:/srv/backup"),
        ("davfs", "https://dav.example.net/backup"),
    ],
)
def test_separation_on_another_hosts_filesystem(fstype: str, source: str) -> None:
    assert separation(classify("/mnt/repo/restic"), _on(fstype, source)) == (
        True,
        f"local path /mnt/repo/restic is on a {fstype} mount of {source}: stored on another machine",
    )


@pytest.mark.parametrize(("fstype", "source"), [("9p", "drvfs"), ("virtiofs", "kataShared")])
def test_separation_on_a_vm_hosts_share_is_unknown(fstype: str, source: str) -> None:
    """A guest's repository on its VM host's share (WSL2's drives on 9p, a Kata container's root on
    virtiofs) is outside the guest but may be on the very hardware it runs on: not known separate."""
    separate, reason = separation(classify("/mnt/repo/restic"), _on(fstype, source))
    assert separate is None
    assert reason.startswith(f"local path /mnt/repo/restic is on a {fstype} mount of {source}: a directory of")


def test_a_path_no_mount_holds_is_unknown() -> None:
    """Every Linux system mounts "/": an empty table (or one of another system) cannot place a path."""
    assert separation(classify("/var/backups"), []) == (
        None,
        "local path /var/backups: no mount in the mount table holds it",
    )


def test_captured_mountinfo_and_unreadable_table() -> None:
    mounts = parse_mountinfo(read("mountinfo_debian-12_container-root-on-ext4.txt"))
    assert separation(classify("/var/backups"), mounts) == (
        False,
        "local path /var/backups is on ext4 /dev/vda mounted at /: on this node",
    )
    assert separation(classify("/var/backups"), None) == (None, "mount table unreadable")
    assert separation(classify("/var/backups"), None, "mountinfo line 1: no ' - ' separator") == (
        None,
        "mount table unreadable: mountinfo line 1: no ' - ' separator",
    )
    # The parser refuses what it cannot read: a table read in part could place the path on "/".
    with pytest.raises(MountinfoFormatError, match="mountinfo line 1: no ' - ' separator"):
        parse_mountinfo("garbage line\n")
