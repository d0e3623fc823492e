"""Match mounts and swaps to the device stack and turn each into an observed record.

Pure apart from :func:`device_for_source`, which may follow a /dev symlink
below the injectable root.  The ZFS facts come in already parsed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from collectors.disk_encryption.model import Devices
from collectors.disk_encryption.parse_zfs import ZfsEncryption
from collectors.disk_encryption.read_sysfs import btrfs_members, by_dm_name, by_majmin
from collectors.disk_encryption.stack import Decision, decide, merge
from collectors.mounts import NETWORK_FSTYPES, VM_HOST_FSTYPES, MountEntry


@dataclass
class Scene:
    """The device stack and the facts gathered from commands, as the collector saw them."""

    root: Path
    devices: Devices
    sysfs_error: Optional[str] = None
    crypt_targets: Dict[str, str] = field(default_factory=dict)
    """dm name -> cipher from ``dmsetup table --target crypt`` (empty without root)."""
    dm_table_error: Optional[str] = None
    zfs_props: Dict[str, ZfsEncryption] = field(default_factory=dict)
    zfs_error: Optional[str] = None
    zpool_vdevs: Dict[str, List[str]] = field(default_factory=dict)
    zpool_error: Optional[str] = None

    def __post_init__(self) -> None:
        self.majmin = by_majmin(self.devices)
        self.dm_names = by_dm_name(self.devices)


def device_for_source(scene: Scene, source: str) -> Optional[str]:
    """Kernel name for a mount or swap source such as /dev/mapper/vg0-root or /dev/dm-1."""
    if not source.startswith("/dev/"):
        return None
    name = os.path.basename(source)
    if source.startswith("/dev/mapper/") and name in scene.dm_names:
        return scene.dm_names[name]
    if name in scene.devices:
        return name
    # /dev/disk/by-uuid/… and /dev/vg0/root are symlinks to ../../dm-1 (udev rules).
    try:
        resolved = os.path.basename(os.path.realpath(scene.root / source.lstrip("/")))
    except OSError:
        return None
    return resolved if resolved in scene.devices else None


def _block_decision(scene: Scene, kname: str, fstype: str) -> Decision:
    if fstype == "btrfs":
        members = btrfs_members(scene.root, kname)
        if members != [kname]:
            return merge([decide(scene.devices, m, scene.crypt_targets) for m in members])
    return decide(scene.devices, kname, scene.crypt_targets)


def _zfs_decision(scene: Scene, dataset: str) -> Tuple[Decision, Optional[Dict[str, Any]]]:
    """ZFS native encryption from ``zfs get``; ZFS on LUKS from the pool's vdevs."""
    pool = dataset.split("/", 1)[0]
    props = scene.zfs_props.get(dataset)
    vdevs = scene.zpool_vdevs.get(pool)
    parts: List[Decision] = []
    reasons: List[str] = []
    if vdevs is None:
        reasons.append(scene.zpool_error or f"zpool status did not list pool {pool}")
    else:
        for path in vdevs:
            kname = device_for_source(scene, path)
            if kname is None:
                parts.append(
                    Decision(
                        None,
                        chain=[path],
                        unknown_reasons=[f"vdev {path} of pool {pool} is not a block device in /sys"],
                    )
                )
            else:
                parts.append(decide(scene.devices, kname, scene.crypt_targets))
    below = merge(parts) if parts else Decision(None, unknown_reasons=reasons)
    below.chain = [f"{line} -> zpool {pool}" for line in below.chain] or [f"zpool {pool}"]
    zfs_facts: Optional[Dict[str, Any]] = None
    if props is not None:
        zfs_facts = {
            "dataset": dataset,
            "encryption": props.encryption,
            "keystatus": props.keystatus,
            "encryptionroot": props.encryptionroot,
        }
    else:
        reasons.append(scene.zfs_error or f"zfs get did not list dataset {dataset}")
    native = props.encrypted if props is not None else None
    result = Decision(None, chain=below.chain, crypt_devices=below.crypt_devices)
    if native is True:
        result.encrypted, result.layer = True, "zfs-native"
    elif below.encrypted is True:
        result.encrypted, result.layer = True, below.layer
    elif native is False and below.encrypted is False:
        result.encrypted = False
    else:
        result.unknown_reasons = sorted(set(reasons + below.unknown_reasons))
    return result, zfs_facts


def judge_mount(scene: Scene, entry: MountEntry) -> Tuple[Optional[str], Decision, Optional[Dict[str, Any]]]:
    """(kernel name, decision, zfs facts) for one mounted filesystem."""
    if entry.fstype == "zfs":
        decision, facts = _zfs_decision(scene, entry.source)
        return None, decision, facts
    # Any FUSE filesystem, networked or not, is served by a user-space process: not visible either.
    if entry.fstype in NETWORK_FSTYPES or entry.fstype in VM_HOST_FSTYPES or entry.fstype.startswith("fuse."):
        return (
            None,
            Decision(
                None,
                unknown_reasons=[
                    f"{entry.fstype} filesystem from {entry.source}: its storage is on another host or in "
                    "a user-space process, whose encryption is not visible from this node"
                ],
            ),
            None,
        )
    kname = scene.majmin.get(entry.majmin) or device_for_source(scene, entry.source)
    if kname is None:
        if scene.sysfs_error:
            reason = scene.sysfs_error
        else:
            reason = f"device {entry.majmin} (source {entry.source}) is not a block device in /sys/block"
        return None, Decision(None, unknown_reasons=[reason]), None
    return kname, _block_decision(scene, kname, entry.fstype), None


def judge_swap_device(scene: Scene, path: str) -> Tuple[Optional[str], Decision]:
    """(kernel name, decision) for a swap partition/device named in /proc/swaps."""
    kname = device_for_source(scene, path)
    if kname is None:
        reason = scene.sysfs_error or f"swap device {path} is not a block device in /sys/block"
        return None, Decision(None, unknown_reasons=[reason])
    return kname, decide(scene.devices, kname, scene.crypt_targets)
