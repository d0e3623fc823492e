"""Settings of the disk_encryption collector (``collectors.disk_encryption.*`` in agent.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence

from collectors.disk_encryption.parse_procfs import BOOT_MOUNTPOINTS, DEFAULT_SKIP_FSTYPES
from collectors.settings import Field

SETTINGS: Dict[str, Field] = {
    "skip_fstypes": Field(
        list,
        list(DEFAULT_SKIP_FSTYPES),
        "filesystem types that hold no data of their own on a block device (pseudo, memory, "
        "read-only images, overlay); mounts of these types are not reported",
    ),
    "skip_mountpoints": Field(list, [], "mount points (and everything below them) not to report, e.g. /mnt/scratch"),
    "boot_mountpoints": Field(
        list,
        list(BOOT_MOUNTPOINTS),
        "mount points of the boot files (kernel, initramfs, boot loader) and the EFI system partition, "
        "which firmware and boot loader read before any key is entered: reported with boot: true",
    ),
    "scan_luks_headers": Field(
        bool,
        True,
        "look for LUKS containers that are not opened: as root read the first 20 KiB of each "
        "block device, otherwise use the udev database",
    ),
    "skip_devices": Field(
        list, ["sr", "fd"], "kernel-name prefixes of block devices never read (optical and floppy drives)"
    ),
    "use_dmsetup": Field(
        bool,
        True,
        "as root, run 'dmsetup table --target crypt' for ciphers of dm-crypt devices without "
        "a LUKS header (plain mode, random-key swap)",
    ),
    "zfs": Field(bool, True, "when ZFS datasets are mounted, run 'zfs get' and 'zpool status' for them"),
    "command_timeout": Field(float, 5.0, "seconds before dmsetup, zfs or zpool is killed", minimum=0.1),
}


def watch_paths(settings: Mapping[str, Any], state_dir: Optional[Path] = None) -> Sequence[str]:
    """crypttab and fstab changes come before a new mapping or mount."""
    return ("/etc/crypttab", "/etc/fstab")
