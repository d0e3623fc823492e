"""Build the block-device stack from sysfs below an injectable root.

Reads only ``<root>/sys/block/<dev>/{dev,size,dm/uuid,dm/name,md/level,
loop/backing_file,slaves/}`` and each partition's ``<dev>/<part>/{dev,size,
partition}`` (sysfs-block ABI, Documentation/ABI/stable/sysfs-block).  Nothing
here follows symlinks on purpose, so a captured tree of plain directories and
files drives it exactly like the real /sys (where the entries are symlinks).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple

from collectors.disk_encryption.model import BlockDevice, Devices, kind_from_dm_uuid


class SysfsUnreadable(OSError):
    """``/sys/block`` itself cannot be listed; nothing can be decided."""


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _size(path: Path) -> Optional[int]:
    text = _read(path / "size")
    return int(text) if text is not None and text.isdigit() else None


def _slaves(path: Path) -> Tuple[str, ...]:
    try:
        return tuple(sorted(entry.name for entry in (path / "slaves").iterdir()))
    except OSError:
        return ()


def _device(path: Path, name: str) -> BlockDevice:
    majmin = _read(path / "dev")
    lower = _slaves(path)
    dm_uuid = dm_name = crypt_type = backing = None
    if (path / "dm").is_dir():
        dm_uuid = _read(path / "dm" / "uuid") or ""
        dm_name = _read(path / "dm" / "name")
        kind, crypt_type = kind_from_dm_uuid(dm_uuid)
    elif (path / "md").is_dir():
        level = _read(path / "md" / "level")
        kind = level or "md"
    elif name.startswith("loop"):
        kind = "loop"
        backing = _read(path / "loop" / "backing_file")
    elif name.startswith(("zram", "ram")):
        kind = "ram"
    else:
        kind = "disk"
    return BlockDevice(name, kind, lower, majmin, dm_name, dm_uuid or None, crypt_type, _size(path), backing)


def _partitions(path: Path, disk: str) -> List[BlockDevice]:
    found: List[BlockDevice] = []
    try:
        entries = sorted(path.iterdir())
    except OSError:
        return found
    for entry in entries:
        # Partitions are named after their disk (sda1, nvme0n1p2, mmcblk0p1, loop0p1).
        if entry.name.startswith(disk) and entry.name != disk and (entry / "partition").exists():
            found.append(BlockDevice(entry.name, "part", (disk,), _read(entry / "dev"), size_sectors=_size(entry)))
    return found


def read_block_devices(root: Path) -> Devices:
    """All block devices under ``<root>/sys/block`` with their partitions.

    Raises :class:`SysfsUnreadable` when /sys/block cannot be listed; a single
    unreadable attribute only leaves that attribute empty.
    """
    base = root / "sys" / "block"
    try:
        names = sorted(entry.name for entry in base.iterdir())
    except OSError as err:
        raise SysfsUnreadable(err.errno, err.strerror, str(base)) from err
    devices: Devices = {}
    for name in names:
        path = base / name
        devices[name] = _device(path, name)
        for part in _partitions(path, name):
            devices[part.name] = part
    return devices


def by_majmin(devices: Devices) -> dict[str, str]:
    """``"8:2" -> "sda2"`` for every device whose ``dev`` file was readable."""
    return {dev.majmin: dev.name for dev in devices.values() if dev.majmin}


def by_dm_name(devices: Devices) -> dict[str, str]:
    """``"sda2_crypt" -> "dm-0"`` (the names under /dev/mapper)."""
    return {dev.dm_name: dev.name for dev in devices.values() if dev.dm_name}


def btrfs_members(root: Path, kname: str) -> List[str]:
    """All devices of the btrfs filesystem that ``kname`` belongs to (/sys/fs/btrfs/<fsid>/devices/).

    Returns ``[kname]`` when sysfs does not list it (single device, or no btrfs sysfs).
    """
    base = root / "sys" / "fs" / "btrfs"
    try:
        fsids = sorted(base.iterdir())
    except OSError:
        return [kname]
    for fsid in fsids:
        try:
            members = sorted(entry.name for entry in (fsid / "devices").iterdir())
        except OSError:
            continue
        if kname in members:
            return members
    return [kname]
