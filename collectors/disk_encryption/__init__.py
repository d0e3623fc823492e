"""disk_encryption: is every data filesystem and swap on an encrypted layer (control M02)?

Walks each mount's block-device stack in sysfs (partitions, md, LVM, dm-crypt),
asks ZFS about native encryption and its vdevs, and lists LUKS containers
present on the node, opened or not.  See docs/collectors/disk_encryption.md.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from collectors.base import CollectorSpec
from collectors.disk_encryption.collect import collect
from collectors.disk_encryption.schema import SCHEMA

VERSION = "1.1.0"


def summary(observed: Mapping[str, Any]) -> str:
    """``4 mounts: 2 encrypted, 2 unencrypted (1 boot); swap 1/1 encrypted; LUKS not opened: 1``."""
    mounts = observed.get("mounts") or []
    swaps = observed.get("swaps") or []

    def count(records: Sequence[Mapping[str, Any]], value: Any) -> int:
        return sum(1 for r in records if r.get("encrypted") is value)

    parts = [f"{len(mounts)} mounts: {count(mounts, True)} encrypted, {count(mounts, False)} unencrypted"]
    boot = count([m for m in mounts if m.get("boot")], False)
    if boot:
        parts[0] += f" ({boot} boot)"
    if count(mounts, None):
        parts[0] += f", {count(mounts, None)} unknown"
    if observed.get("mounts") is None:
        parts[0] = "mounts unknown"
    if observed.get("swaps") is None:
        parts.append("swap unknown")
    elif swaps:
        parts.append(f"swap {count(swaps, True)}/{len(swaps)} encrypted")
    closed = sum(1 for c in observed.get("luks_containers") or [] if not c.get("opened"))
    if closed:
        parts.append(f"LUKS not opened: {closed}")
    return "; ".join(parts)


def watch_paths(settings: Mapping[str, Any]) -> Sequence[str]:
    """crypttab and fstab changes come before a new mapping or mount."""
    return ("/etc/crypttab", "/etc/fstab")


SPEC = CollectorSpec(
    name="disk_encryption",
    version=VERSION,
    controls=("M02",),
    collect=collect,
    settings=SCHEMA,
    summary=summary,
    watch_paths=watch_paths,
)
