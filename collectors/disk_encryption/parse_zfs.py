"""Pure parsers for ``zfs get -H -p -o name,property,value`` and ``zpool status -P -L``.

zfs(8)/zfsprops(7): ``encryption`` is ``off`` or the suite (aes-256-gcm …),
``keystatus`` is ``available``/``unavailable`` (``-`` when not encrypted),
``encryptionroot`` names the dataset whose key protects this one (``-`` when
not encrypted).  zpool-status(8): ``-P`` prints full vdev paths, ``-L``
resolves /dev/mapper and /dev/disk/by-* links to the kernel device
(``/dev/dm-3``), which is how a vdev is matched to sysfs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional


class ZfsFormatError(ValueError):
    """Output that is not the documented tab-separated or status shape."""


@dataclass(frozen=True)
class ZfsEncryption:
    """The encryption properties of one dataset."""

    dataset: str
    encryption: Optional[str]
    keystatus: Optional[str]
    encryptionroot: Optional[str]

    @property
    def encrypted(self) -> Optional[bool]:
        if self.encryption is None:
            return None
        return self.encryption != "off"


def _value(text: Optional[str]) -> Optional[str]:
    return None if text in (None, "-", "") else text


def parse_zfs_get(text: str) -> Dict[str, ZfsEncryption]:
    """Parse ``name<TAB>property<TAB>value`` lines into one record per dataset."""
    raw: Dict[str, Dict[str, str]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise ZfsFormatError(f"zfs get line {number}: expected 3 tab-separated fields, got {len(fields)}")
        raw.setdefault(fields[0], {})[fields[1]] = fields[2]
    return {
        name: ZfsEncryption(
            name, _value(props.get("encryption")), _value(props.get("keystatus")), _value(props.get("encryptionroot"))
        )
        for name, props in raw.items()
    }


def parse_zpool_status(text: str) -> Dict[str, List[str]]:
    """Pool name -> the device paths of its vdevs (data, log, cache, spare), in order."""
    pools: Dict[str, List[str]] = {}
    pool: Optional[str] = None
    in_config = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("pool:"):
            pool = stripped.split(":", 1)[1].strip()
            pools[pool] = []
            in_config = False
        elif stripped.startswith("config:"):
            in_config = True
        elif stripped.startswith("errors:"):
            in_config = False
        elif in_config and pool is not None and stripped.startswith("/"):
            pools[pool].append(stripped.split()[0])
    if text.strip() and not pools:
        raise ZfsFormatError("zpool status output names no pool")
    return pools
