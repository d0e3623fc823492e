"""Pure parser for ``/proc/swaps``; the filesystems this collector does not report; the boot mounts.

Format: proc(5) ("/proc/swaps"); paths are escaped with octal sequences (``\\040`` for a
space) as in mountinfo, whose parser is :mod:`collectors.mounts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from collectors.mounts import unescape

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


# Where the boot files live: /boot (kernel, initramfs, GRUB; also the XBOOTLDR partition) and the
# EFI system partition at /boot/efi (Debian, RHEL) or /efi (systemd's Boot Loader Specification).
# Firmware must read the ESP (FAT, UEFI spec 13.3) and the boot loader /boot before any passphrase
# is entered, so a standard LUKS install leaves them clear; they hold software, not personal data.
BOOT_MOUNTPOINTS = ("/boot", "/boot/efi", "/efi")


class ProcFormatError(ValueError):
    """A line of /proc/swaps does not have the documented shape."""


@dataclass(frozen=True)
class SwapEntry:
    """One active swap area from /proc/swaps."""

    path: str
    type: str
    """"partition" or "file"."""
    size_kib: Optional[int]
    used_kib: Optional[int]
    priority: Optional[int]


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
