"""The shared mount table: mountinfo parsing and the mount holding a path, over captured tables."""

from __future__ import annotations

import pytest

from collectors.mounts import MountinfoFormatError, mount_holding, parse_mountinfo, parse_mountinfo_read
from tests.conftest import FIXTURES

CAPTURED_VM = FIXTURES / "disk_encryption/trees/debian-12_unencrypted-root_captured/proc/self/mountinfo"
CAPTURED_CONTAINER = FIXTURES / "backup/mountinfo_debian-12_container-root-on-ext4.txt"


def test_mountinfo_captured() -> None:
    entries = parse_mountinfo(CAPTURED_VM.read_text())
    root = next(e for e in entries if e.mountpoint == "/")
    assert (root.majmin, root.fstype, root.source, root.root) == ("254:0", "ext4", "/dev/vda", "/")
    assert len(entries) == 20


def test_mountinfo_escapes_bind_and_optional_fields() -> None:
    text = "33 21 254:1 /srv/my\\040www /var/www rw,relatime shared:1 master:2 - ext4 /dev/mapper/vg-root rw\n"
    (entry,) = parse_mountinfo(text)
    assert (entry.mount_id, entry.root, entry.mountpoint, entry.fstype, entry.source) == (
        33,
        "/srv/my www",
        "/var/www",
        "ext4",
        "/dev/mapper/vg-root",
    )


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("22 27 0:21 / /proc rw,relatime proc proc rw", "mountinfo line 1: no ' - ' separator"),
        ("x 27 0:21 / /proc rw - proc proc rw", "mountinfo line 1: mount id 'x' is not a number"),
        ("22 27 0:21 / /proc rw -", "mountinfo line 1: too few fields"),
        ("26 1 254:1 / / rw - ext4 /dev/vda1 rw\ngarbage line\n", "mountinfo line 2: no ' - ' separator"),
    ],
)
def test_mountinfo_malformed_names_the_line(bad: str, message: str) -> None:
    with pytest.raises(MountinfoFormatError) as raised:
        parse_mountinfo(bad)
    assert str(raised.value) == message


def test_mountinfo_absent() -> None:
    assert parse_mountinfo("") == []


def test_mount_holding_prefers_longest_mountpoint() -> None:
    mounts = parse_mountinfo("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n2 1 8:2 / /srv rw - ext4 /dev/sda2 rw\n")
    holder = mount_holding("/srv/swapfile", mounts)
    assert holder is not None and holder.mountpoint == "/srv"
    holder = mount_holding("/srv", mounts)
    assert holder is not None and holder.mountpoint == "/srv"
    holder = mount_holding("/srvx/swapfile", mounts)
    assert holder is not None and holder.mountpoint == "/"
    assert mount_holding("/srv/x", []) is None


def test_mount_holding_last_mounted_wins_in_captured_table() -> None:
    # The captured container table mounts /dev/pts and /dev/shm twice; the later mount hides the earlier.
    mounts = parse_mountinfo(CAPTURED_CONTAINER.read_text())
    found = mount_holding("/var/backups/restic", mounts)
    assert found is not None and (found.mountpoint, found.fstype) == ("/", "ext4")
    shm = mount_holding("/dev/shm/x", mounts)
    assert shm is not None and shm.mount_id == 30


def test_only_a_newline_ends_a_line() -> None:
    """The kernel escapes space, tab, newline and backslash in a path, nothing else: a mount point
    with a form feed (any user may make one with fusermount) is one line, not a broken table."""
    text = (
        "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"
        "2 1 0:50 / /tmp/odd\fname\x1cx\u2028y rw - fuse.sshfs me@host:/ rw\n"
        "3 1 8:2 / /srv rw - ext4 /dev/sda2 rw\n"
    )
    entries = parse_mountinfo(text)
    assert [e.mountpoint for e in entries] == ["/", "/tmp/odd\fname\x1cx\u2028y", "/srv"]


def test_a_table_larger_than_the_limit_is_refused_not_read_in_part() -> None:
    line = b"1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"
    assert parse_mountinfo_read(line * 3, limit=len(line) * 3) == parse_mountinfo((line * 3).decode())
    # cut at a line's end the rest would parse, and a mount holding the path could be missing
    with pytest.raises(MountinfoFormatError, match="larger than 105 bytes: not read in part"):
        parse_mountinfo_read(line * 3 + b"2", limit=len(line) * 3)
