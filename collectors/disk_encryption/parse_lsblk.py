"""Pure parser for ``lsblk --json -o NAME,KNAME,TYPE,FSTYPE,FSVER,UUID,MOUNTPOINTS``.

It yields the same :class:`~collectors.disk_encryption.model.BlockDevice` stack
as the sysfs walk, so tests can cross-check the two.  The collector itself does
not run lsblk: lsblk reads the same sysfs files plus the udev database, so it
would add a subprocess without adding a source (docs/collectors/disk_encryption.md).
lsblk(8): ``children`` of a device are its holders; a device held by several
lower devices (an md array over two partitions) appears under each of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set

from collectors.disk_encryption.model import BlockDevice, Devices


class LsblkFormatError(ValueError):
    """The text is not lsblk's JSON shape."""


@dataclass
class LsblkResult:
    """Devices by kernel name, with their mount points and filesystem types."""

    devices: Devices = field(default_factory=dict)
    mountpoints: Dict[str, List[str]] = field(default_factory=dict)
    fstypes: Dict[str, Optional[str]] = field(default_factory=dict)


def _crypt_type(lower: Dict[str, Any]) -> Optional[str]:
    """A crypt device's type as lsblk can tell it: from the FSTYPE/FSVER of the device below."""
    fstype = lower.get("fstype")
    if fstype == "crypto_LUKS":
        version = str(lower.get("fsver") or "")
        return f"LUKS{version}" if version in ("1", "2") else None
    if fstype == "BitLocker":
        return "BITLK"
    return None


def _mounts(node: Dict[str, Any]) -> List[str]:
    # util-linux >= 2.37 has MOUNTPOINTS (a list, [null] when none); older ones MOUNTPOINT.
    values = node.get("mountpoints")
    if values is None:
        values = [node.get("mountpoint")]
    return [str(v) for v in values if v]


def parse_lsblk_json(text: str) -> LsblkResult:
    """Parse lsblk's JSON tree into a device stack (kernel names, bottom-up ``lower``)."""
    try:
        data = json.loads(text)
    except ValueError as err:
        raise LsblkFormatError(f"lsblk output is not JSON: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("blockdevices"), list):
        raise LsblkFormatError("lsblk JSON has no 'blockdevices' list")
    result = LsblkResult()
    lowers: Dict[str, Set[str]] = {}
    kinds: Dict[str, str] = {}
    crypt_types: Dict[str, Optional[str]] = {}
    dm_names: Dict[str, Optional[str]] = {}

    def visit(node: Any, parent: Optional[Dict[str, Any]]) -> None:
        if not isinstance(node, dict) or not node.get("type"):
            raise LsblkFormatError(f"lsblk device entry without a type: {node!r:.80}")
        kname = str(node.get("kname") or node.get("name") or "")
        if not kname:
            raise LsblkFormatError("lsblk device entry without a name")
        kind = str(node["type"])
        kinds[kname] = kind
        lowers.setdefault(kname, set())
        if parent is not None:
            lowers[kname].add(str(parent.get("kname") or parent.get("name")))
            if kind == "crypt":
                crypt_types[kname] = _crypt_type(parent)
        if kind in ("crypt", "lvm", "dm", "mpath") and node.get("name") != kname:
            dm_names[kname] = str(node.get("name"))
        result.mountpoints.setdefault(kname, [])
        for point in _mounts(node):
            if point not in result.mountpoints[kname]:
                result.mountpoints[kname].append(point)
        result.fstypes[kname] = node.get("fstype")
        for child in node.get("children") or []:
            visit(child, node)

    for top in data["blockdevices"]:
        visit(top, None)
    for kname, kind in kinds.items():
        result.devices[kname] = BlockDevice(
            name=kname,
            kind="ram" if kname.startswith("zram") else kind,
            lower=tuple(sorted(lowers[kname])),
            dm_name=dm_names.get(kname),
            crypt_type=crypt_types.get(kname),
        )
    return result
