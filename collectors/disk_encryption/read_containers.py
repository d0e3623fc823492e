"""Find LUKS containers, opened or not: the I/O around :mod:`luks`.

Opened containers are known without root from the dm uuid of their crypt
mapping (``CRYPT-LUKS2-<uuid>-<name>``).  Containers that are not opened are
found as root by reading the first 20 KiB of each block device (primary magic
at 0, LUKS2 secondary at 0x4000), otherwise from udev's database
(``ID_FS_TYPE=crypto_LUKS``, written by udev's blkid builtin).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from collectors.base import Context, describe_os_error
from collectors.disk_encryption.model import BlockDevice, Devices, luks_uuid_from_dm_uuid
from collectors.disk_encryption.parse_luks import (
    READ_SIZE,
    LuksFormatError,
    LuksHeader,
    has_magic,
    parse_luks_header,
    parse_udev_properties,
    required_size,
)
from evidence.model import Gap

_NEVER_SCANNED = ("crypt", "ram")


def read_header_area(ctx: Context, kname: str) -> bytes:
    """The bytes a LUKS header needs from the start of /dev/<kname> (raises OSError)."""
    with open(ctx.path(f"/dev/{kname}"), "rb") as handle:
        data = handle.read(READ_SIZE)
        need = required_size(data)
        if need > len(data) and len(data) == READ_SIZE:
            data += handle.read(need - len(data))
    return data


def _why(err: OSError, kname: str) -> str:
    if isinstance(err, PermissionError):
        # Root can still be refused by a device cgroup or a security module (containers).
        return f"permission denied opening /dev/{kname} even as root (device cgroup or security module)"
    return describe_os_error(err, f"/dev/{kname}")


def _openers(devices: Devices) -> Dict[str, BlockDevice]:
    """Container kernel name -> the crypt mapping that has it open."""
    return {dev.lower[0]: dev for dev in devices.values() if dev.kind == "crypt" and len(dev.lower) == 1}


def _candidates(devices: Devices, skip: List[str]) -> List[BlockDevice]:
    return [
        dev
        for dev in devices.values()
        if dev.kind not in _NEVER_SCANNED
        and not dev.volatile
        and not dev.name.startswith(tuple(skip))
        and dev.size_sectors != 0
    ]


def _record(
    kname: str, header: Optional[LuksHeader], opener: Optional[BlockDevice], udev: Dict[str, str]
) -> Dict[str, Any]:
    version: Optional[int] = header.version if header else None
    uuid = header.uuid if header else None
    if header is None and udev.get("ID_FS_VERSION", "").isdigit():
        version, uuid = int(udev["ID_FS_VERSION"]), udev.get("ID_FS_UUID") or None
    if opener is not None and opener.crypt_type in ("LUKS1", "LUKS2"):
        version = version or int(opener.crypt_type[-1])
        uuid = uuid or luks_uuid_from_dm_uuid(opener.dm_uuid or "")
    return {
        "device": kname,
        "version": version,
        "cipher": header.cipher if header else None,
        "key_bits": header.key_bits if header else None,
        "kdfs": list(header.kdfs) if header else None,
        "uuid": uuid,
        "label": header.label if header else None,
        "opened": opener is not None,
        "mapped_as": opener.dm_name if opener is not None else None,
        "primary_header_damaged": header.from_secondary if header else None,
    }


def find_containers(
    ctx: Context, devices: Devices, settings: Dict[str, Any]
) -> Tuple[List[Dict[str, Any]], Dict[str, LuksHeader], List[Gap]]:
    """(container records, headers by kernel name, gaps)."""
    openers = _openers(devices)
    luks_openers = {k: v for k, v in openers.items() if v.crypt_type in ("LUKS1", "LUKS2")}
    headers: Dict[str, LuksHeader] = {}
    gaps: List[Gap] = []
    found: Dict[str, Optional[LuksHeader]] = {k: None for k in luks_openers}
    unread: List[str] = []
    udev: Dict[str, Dict[str, str]] = {}
    if ctx.is_root:
        targets = (
            _candidates(devices, settings["skip_devices"])
            if settings["scan_luks_headers"]
            else [devices[k] for k in luks_openers if k in devices]
        )
        for dev in targets:
            try:
                data = read_header_area(ctx, dev.name)
            except OSError as err:
                unread.append(f"{dev.name} ({_why(err, dev.name)})")
                continue
            if not has_magic(data):
                continue
            try:
                header = parse_luks_header(data)
            except LuksFormatError as err:
                gaps.append(Gap(f"LUKS header of {dev.name}", str(err)))
                found.setdefault(dev.name, None)
                continue
            if header is not None:
                headers[dev.name] = header
                found[dev.name] = header
        if unread:
            gaps.append(Gap("LUKS headers", "cannot read " + "; ".join(unread)))
    else:
        if luks_openers:
            gaps.append(
                Gap(
                    "LUKS header details (cipher, key size, key slots)",
                    "not root: LUKS headers on block devices are readable only by root",
                )
            )
        if settings["scan_luks_headers"]:
            _from_udev(ctx, devices, settings, udev, gaps)
            found.update({k: None for k in udev if k not in found})
            if udev:
                gaps.append(
                    Gap(
                        f"cipher of LUKS containers {', '.join(sorted(udev))}",
                        "not root: LUKS headers on block devices are readable only by root",
                    )
                )
    records = [_record(k, headers.get(k), openers.get(k), udev.get(k, {})) for k in sorted(found)]
    return records, headers, gaps


def _from_udev(
    ctx: Context, devices: Devices, settings: Dict[str, Any], found: Dict[str, Dict[str, str]], gaps: List[Gap]
) -> None:
    """Without root: LUKS containers from udev's database (/run/udev/data/b<maj>:<min>)."""
    if not ctx.path("/run/udev/data").is_dir():
        gaps.append(
            Gap(
                "LUKS containers that are not opened",
                "not root and no udev database (/run/udev/data): block-device headers unreadable",
            )
        )
        return
    missing: List[str] = []
    for dev in _candidates(devices, settings["skip_devices"]):
        if not dev.majmin:
            continue
        try:
            props = parse_udev_properties(ctx.read_text(f"/run/udev/data/b{dev.majmin}"))
        except OSError:
            missing.append(dev.name)
            continue
        if props.get("ID_FS_TYPE") == "crypto_LUKS":
            found[dev.name] = props
    if missing:
        gaps.append(
            Gap("LUKS containers that are not opened", f"not root and udev has no record of {', '.join(missing)}")
        )
