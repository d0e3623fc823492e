"""The block-device stack model shared by the sysfs walk and the lsblk parser.

A :class:`BlockDevice` is one layer (disk, partition, md array, dm device …) and
names the layers directly below it in ``lower``, so a mount's device can be
followed down to the physical disks it is stored on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

# cryptsetup names the mappings it creates ``CRYPT-<TYPE>-...`` in the dm uuid
# (lib/libcryptsetup.h CRYPT_LUKS1 …; lib/setup.c, dm_prepare_uuid()).  These
# types encrypt data; CRYPT-VERITY, CRYPT-INTEGRITY and CRYPT-SUBDEV (the
# dm-integrity layer under a LUKS2 volume with --integrity) do not.
ENCRYPTING_CRYPT_TYPES = ("LUKS1", "LUKS2", "PLAIN", "TEMP", "BITLK", "TCRYPT", "LOOPAES", "FVAULT2")
NON_ENCRYPTING_CRYPT_TYPES = ("VERITY", "INTEGRITY", "SUBDEV")

# Devices whose contents live only in RAM (zram swap, brd ram disks): never on media.
VOLATILE_PREFIXES = ("zram", "ram")


@dataclass(frozen=True)
class BlockDevice:
    """One layer of the block-device stack, named by its kernel name (``sda2``, ``dm-0``)."""

    name: str
    kind: str
    """disk, part, crypt, lvm, raid0/raid1/…, loop, mpath, dm (other device-mapper), ram."""
    lower: Tuple[str, ...] = ()
    """Kernel names of the devices directly below (dm/md slaves, a partition's disk)."""
    majmin: Optional[str] = None
    dm_name: Optional[str] = None
    dm_uuid: Optional[str] = None
    crypt_type: Optional[str] = None
    """For ``kind == "crypt"``: LUKS1, LUKS2, PLAIN, TEMP … (None when not known)."""
    size_sectors: Optional[int] = None
    backing_file: Optional[str] = None
    """For loop devices: the file the device reads from."""

    @property
    def volatile(self) -> bool:
        return self.kind == "ram" or self.name.startswith(VOLATILE_PREFIXES)


def kind_from_dm_uuid(uuid: str) -> Tuple[str, Optional[str]]:
    """Map a dm uuid to (kind, crypt type): ``CRYPT-LUKS2-…`` → ("crypt", "LUKS2").

    Prefixes: cryptsetup ``CRYPT-``, LVM2 ``LVM-`` (lib/activate/dev_manager.c),
    multipath ``mpath-``, kpartx partitions ``part<N>-``.
    """
    if uuid.startswith("CRYPT-"):
        crypt_type = uuid.split("-", 2)[1] if uuid.count("-") >= 1 else ""
        if crypt_type in NON_ENCRYPTING_CRYPT_TYPES:
            return "dm-" + crypt_type.lower(), None
        return "crypt", crypt_type or None
    if uuid.startswith("LVM-"):
        return "lvm", None
    if uuid.startswith("mpath-"):
        return "mpath", None
    if uuid.startswith("part") and "-" in uuid:
        return "part", None
    return "dm", None


def luks_uuid_from_dm_uuid(uuid: str) -> Optional[str]:
    """The LUKS header uuid embedded in ``CRYPT-LUKS2-<32 hex>-<name>``, dashed (8-4-4-4-12)."""
    parts = uuid.split("-", 3)
    if len(parts) < 3 or parts[0] != "CRYPT" or not parts[1].startswith("LUKS"):
        return None
    raw = parts[2]
    if len(raw) != 32 or any(c not in "0123456789abcdefABCDEF" for c in raw):
        return None
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}".lower()


Devices = Dict[str, BlockDevice]
"""All block devices of a node by kernel name."""
