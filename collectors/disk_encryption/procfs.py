"""Pure parsers for ``/proc/self/mountinfo`` and ``/proc/swaps``.

Formats: proc(5) ("/proc/pid/mountinfo", "/proc/swaps"); paths in both are
escaped with octal sequences (``\\040`` for a space) by the kernel's
``seq_path``/``mangle`` helpers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional

# Filesystems that hold no data of their own on a block device: kernel views
# (proc, sysfs …), memory-only (tmpfs, ramfs: their pages go to swap, which is
# checked itself), read-only images (squashfs, iso9660, udf, erofs), and
# overlay/aufs, whose upper and lower directories live on another mounted
# filesystem that is checked itself.  See docs/collectors/disk_encryption.md.
DEFAULT_SKIP_FSTYPES = (
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "proc",
    "pstore",
    "ramfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "sysfs",
    "tmpfs",
    "tracefs",
    "squashfs",
    "iso9660",
    "udf",
    "erofs",
    "overlay",
    "aufs",
    "nfsd",
    "fuse.lxcfs",
    "fuse.gvfsd-fuse",
    "fuse.portal",
    "fuse.snapfuse",
    "rootfs",
)

_OCTAL = re.compile(r"\\([0-7]{3})")


class ProcFormatError(ValueError):
    """A line of mountinfo or swaps does not have the documented shape."""


def unescape(text: str) -> str:
    """Undo the kernel's octal escaping (``\\040`` → space)."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), text)


@dataclass(frozen=True)
class MountEntry:
    """One line of mountinfo (only the fields this collector uses)."""

    mount_id: int
    majmin: str
    root: str
    mountpoint: str
    fstype: str
    source: str


@dataclass(frozen=True)
class SwapEntry:
    """One active swap area from /proc/swaps."""

    path: str
    type: str
    """"partition" or "file"."""
    size_kib: Optional[int]
    used_kib: Optional[int]
    priority: Optional[int]


def parse_mountinfo(text: str) -> List[MountEntry]:
    """Parse mountinfo: ``id parent maj:min root mountpoint opts [optional…] - fstype source superopts``."""
    entries: List[MountEntry] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(" ")
        try:
            sep = fields.index("-", 6)
        except ValueError:
            raise ProcFormatError(f"mountinfo line {number}: no ' - ' separator") from None
        if len(fields) < sep + 3 or ":" not in fields[2]:
            raise ProcFormatError(f"mountinfo line {number}: too few fields")
        try:
            mount_id = int(fields[0])
        except ValueError:
            raise ProcFormatError(f"mountinfo line {number}: mount id {fields[0]!r} is not a number") from None
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


def _int_or_none(text: str) -> Optional[int]:
    try:
        return int(text)
    except ValueError:
        return None


def parse_swaps(text: str) -> List[SwapEntry]:
    """Parse /proc/swaps: a header line, then ``Filename Type Size Used Priority`` (sizes in KiB)."""
    lines = text.splitlines()
    if not lines:
        return []
    if not lines[0].startswith("Filename"):
        raise ProcFormatError("/proc/swaps: header line 'Filename Type Size Used Priority' missing")
    swaps: List[SwapEntry] = []
    for number, line in enumerate(lines[1:], 2):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2:
            raise ProcFormatError(f"/proc/swaps line {number}: too few fields")
        swaps.append(
            SwapEntry(
                path=unescape(fields[0]),
                type=fields[1],
                size_kib=_int_or_none(fields[2]) if len(fields) > 2 else None,
                used_kib=_int_or_none(fields[3]) if len(fields) > 3 else None,
                priority=_int_or_none(fields[4]) if len(fields) > 4 else None,
            )
        )
    return swaps


def mount_holding(path: str, mounts: List[MountEntry]) -> Optional[MountEntry]:
    """The mount whose mountpoint is the longest prefix of ``path`` (the last one mounted wins)."""
    best: Optional[MountEntry] = None
    for entry in mounts:
        point = entry.mountpoint.rstrip("/") or "/"
        inside = path == point or path.startswith(point + "/") or point == "/"
        if inside and (best is None or len(point) >= len(best.mountpoint.rstrip("/") or "/")):
            best = entry
    return best
