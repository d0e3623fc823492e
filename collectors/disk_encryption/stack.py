"""Decide, from the device stack alone, whether a device sits on an encrypting layer.

A device is encrypted when *every* path from it down to physical media passes
through a dm-crypt layer (RAID1 over two LUKS disks: yes; an LVM volume group
spanning one LUKS PV and one plain PV: no).  A path that ends in something we
cannot judge (a loop device's backing file, a dm device of unknown target, a
device missing from sysfs) makes the answer None, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from collectors.disk_encryption.model import BlockDevice, Devices

_MAX_DEPTH = 16


@dataclass
class Decision:
    """Whether one device is encrypted, how, and what it is stored on."""

    encrypted: Optional[bool]
    layer: Optional[str] = None
    """Topmost encrypting layer: luks2, luks1, plain, temp, bitlk, … (None when not encrypted)."""
    chain: List[str] = field(default_factory=list)
    """One line per path, bottom-up: ``sda -> sda2 (part) -> dm-0 (crypt LUKS2, name sda2_crypt)``."""
    crypt_devices: List[str] = field(default_factory=list)
    """Kernel names of the dm-crypt layers met (for the cipher look-up)."""
    unknown_reasons: List[str] = field(default_factory=list)
    volatile: bool = False
    """Stored only in RAM (zram swap)."""


def describe(dev: BlockDevice) -> str:
    """``dm-0 (crypt LUKS2, name sda2_crypt)`` — one layer for the chain text."""
    if dev.kind == "disk":
        return dev.name
    detail = dev.kind
    if dev.kind == "crypt" and dev.crypt_type:
        detail += " " + dev.crypt_type
    if dev.dm_name:
        detail += f", name {dev.dm_name}"
    if dev.kind == "loop" and dev.backing_file:
        detail += f", file {dev.backing_file}"
    return f"{dev.name} ({detail})"


def _paths(devices: Devices, name: str, depth: int = 0) -> List[Tuple[str, ...]]:
    """Every path from ``name`` down to a device with nothing below, top-down."""
    dev = devices.get(name)
    if dev is None or not dev.lower or depth >= _MAX_DEPTH:
        return [(name,)]
    out: List[Tuple[str, ...]] = []
    for lower in dev.lower:
        out.extend((name, *rest) for rest in _paths(devices, lower, depth + 1))
    return out


def _judge_path(devices: Devices, path: Tuple[str, ...]) -> Tuple[Optional[bool], Optional[str], str]:
    """(encrypted, layer, reason-if-unknown) for one top-down path."""
    for name in path:
        dev = devices.get(name)
        if dev is None:
            return None, None, f"{name} is not in /sys/block"
        if dev.kind == "crypt":
            return True, (dev.crypt_type or "dm-crypt").lower(), ""
        if dev.kind == "dm":
            return (
                None,
                None,
                (f"{name} is a device-mapper device without a known uuid prefix; its target type was not identified"),
            )
    bottom = devices[path[-1]]
    if bottom.kind == "loop":
        where = bottom.backing_file or "an unknown file"
        return None, None, f"{bottom.name} is a loop device backed by {where}; its filesystem is not followed"
    return False, None, ""


def decide(devices: Devices, name: str, crypt_targets: Optional[Dict[str, str]] = None) -> Decision:
    """Judge device ``name``; ``crypt_targets`` maps dm names known (from dmsetup) to be crypt."""
    if crypt_targets:
        devices = dict(devices)
        for dev in list(devices.values()):
            if dev.kind == "dm" and dev.dm_name in crypt_targets:
                devices[dev.name] = BlockDevice(
                    dev.name, "crypt", dev.lower, dev.majmin, dev.dm_name, dev.dm_uuid, None, dev.size_sectors
                )
    paths = _paths(devices, name)
    verdicts: List[Optional[bool]] = []
    decision = Decision(encrypted=None)
    for path in paths:
        encrypted, layer, reason = _judge_path(devices, path)
        verdicts.append(encrypted)
        if layer and decision.layer is None:
            decision.layer = layer
        if reason:
            decision.unknown_reasons.append(reason)
        bottom_up = [devices[n] if n in devices else BlockDevice(n, "unknown") for n in reversed(path)]
        decision.chain.append(" -> ".join(describe(d) for d in bottom_up))
        for dev in bottom_up:
            if dev.kind == "crypt" and dev.name not in decision.crypt_devices:
                decision.crypt_devices.append(dev.name)
        if any(d.volatile for d in bottom_up):
            decision.volatile = True
    if verdicts and all(v is True for v in verdicts):
        decision.encrypted = True
    elif any(v is False for v in verdicts):
        decision.encrypted = False
        decision.layer = None
    decision.unknown_reasons = sorted(set(decision.unknown_reasons))
    return decision


def merge(decisions: List[Decision]) -> Decision:
    """Several devices holding one filesystem (btrfs members, zpool vdevs): encrypted only if all are."""
    merged = Decision(encrypted=None)
    for part in decisions:
        merged.chain.extend(part.chain)
        merged.crypt_devices.extend(d for d in part.crypt_devices if d not in merged.crypt_devices)
        merged.unknown_reasons.extend(part.unknown_reasons)
        merged.volatile = merged.volatile or part.volatile
        if merged.layer is None:
            merged.layer = part.layer
    verdicts = [d.encrypted for d in decisions]
    if verdicts and all(v is True for v in verdicts):
        merged.encrypted = True
    elif any(v is False for v in verdicts):
        merged.encrypted = False
        merged.layer = None
    if not decisions:
        merged.unknown_reasons.append("no devices")
    merged.unknown_reasons = sorted(set(merged.unknown_reasons))
    return merged
