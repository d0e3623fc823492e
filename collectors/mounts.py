"""The mount table: parse ``/proc/self/mountinfo`` and find the mount holding a path (pure).

Format: proc(5), "/proc/pid/mountinfo"; paths are escaped with octal sequences (``\\040`` for a
space) by the kernel's ``seq_path``/``mangle`` helpers.  Shared by the backup collector (is a
repository stored on another machine?) and the disk_encryption collector (what stores a mount?).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional, Tuple

from collectors.base import Context, describe_os_error

# Filesystems whose storage is another host's, reached over a network: data written there leaves
# this node's hardware, and whether that host encrypts it is not visible from here.
NETWORK_FSTYPES = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ceph",
        "glusterfs",
        "fuse.glusterfs",
        # afs: the Andrew File System, files kept on AFS file servers.
        "afs",
        # sshfs: a directory of an SSH server, reached over SFTP.
        "fuse.sshfs",
        "sshfs",
        # davfs: a WebDAV (RFC 4918) share mounted by davfs2 (`mount -t davfs`).
        "davfs",
        "fuse.davfs2",
        # An S3 bucket (s3fs) and any rclone remote.
        "fuse.s3fs",
        "fuse.rclone",
    }
)

# A directory of the VM host shared into this guest (QEMU's virtio-9p, virtiofsd; also WSL2's
# drives and Kata containers' root): outside this guest, but often on the very hardware it runs on.
VM_HOST_FSTYPES = frozenset({"9p", "virtiofs"})

_OCTAL = re.compile(r"\\([0-7]{3})")

MOUNTINFO_READ_LIMIT = 16 * 1024 * 1024
"""Bytes of /proc/self/mountinfo a collector reads: room for some 100 000 mounts.  A larger table
is refused (:func:`parse_mountinfo_read`), never read in part."""


class MountinfoFormatError(ValueError):
    """A line of mountinfo does not have the documented shape (the message names the line)."""


def unescape(text: str) -> str:
    """Undo the kernel's octal escaping (``\\040`` → space)."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), text)


@dataclass(frozen=True)
class MountEntry:
    """One line of mountinfo (the fields the collectors use)."""

    mount_id: int
    majmin: str
    root: str
    mountpoint: str
    fstype: str
    source: str


def parse_mountinfo(text: str) -> List[MountEntry]:
    """Parse mountinfo: ``id parent maj:min root mountpoint opts [optional…] - fstype source superopts``.

    A line without that shape raises :class:`MountinfoFormatError`: a table read only in part
    could place a path on the wrong mount.
    """
    entries: List[MountEntry] = []
    # only "\n" ends a line: the kernel escapes it (and space, tab, backslash) in paths but no other
    # character str.splitlines() would also split on (form feed, \x1c-\x1e, \x85, \u2028 ...)
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        fields = line.split(" ")
        try:
            sep = fields.index("-", 6)
        except ValueError:
            raise MountinfoFormatError(f"mountinfo line {number}: no ' - ' separator") from None
        if len(fields) < sep + 3 or ":" not in fields[2]:
            raise MountinfoFormatError(f"mountinfo line {number}: too few fields")
        try:
            mount_id = int(fields[0])
        except ValueError:
            raise MountinfoFormatError(f"mountinfo line {number}: mount id {fields[0]!r} is not a number") from None
        entries.append(
            MountEntry(
                mount_id=mount_id,
                majmin=fields[2],
                root=unescape(fields[3]),
                mountpoint=unescape(fields[4]),
                fstype=fields[sep + 1],
                source=unescape(fields[sep + 2]),
            )
        )
    return entries


def parse_mountinfo_read(data: bytes, limit: int = MOUNTINFO_READ_LIMIT) -> List[MountEntry]:
    """Parse what was read of mountinfo: up to ``limit + 1`` bytes, so more than ``limit`` means the
    table did not fit and is refused (a table cut at a line's end would parse, and miss mounts)."""
    if len(data) > limit:
        raise MountinfoFormatError(
            f"mountinfo is larger than {limit} bytes: not read in part, a missing mount could misplace a path"
        )
    return parse_mountinfo(data.decode("utf-8", errors="replace"))


MOUNTINFO = "/proc/self/mountinfo"


def read_mountinfo(ctx: Context) -> Tuple[Optional[List[MountEntry]], str]:
    """This system's mount table, or None and why it could not be had (unreadable, malformed, or
    larger than :data:`MOUNTINFO_READ_LIMIT`): the one way the collectors read it."""
    try:
        return parse_mountinfo_read(ctx.read_bytes(MOUNTINFO, MOUNTINFO_READ_LIMIT + 1)), ""
    except OSError as err:
        return None, describe_os_error(err, MOUNTINFO)
    except MountinfoFormatError as err:
        return None, str(err)


def mount_holding(path: str, mounts: List[MountEntry]) -> Optional[MountEntry]:
    """The mount whose mountpoint is the longest prefix of ``path`` (the last one mounted wins)."""
    best: Optional[MountEntry] = None
    for entry in mounts:
        point = entry.mountpoint.rstrip("/") or "/"
        inside = path == point or path.startswith(point + "/") or point == "/"
        if inside and (best is None or len(point) >= len(best.mountpoint.rstrip("/") or "/")):
            best = entry
    return best
