"""Pure parser for LUKS1/LUKS2 headers as found at the start of a block device.

Layouts: "LUKS On-Disk Format Specification" 1.2.3 (LUKS1 phdr, big-endian) and
"LUKS2 On-Disk Format Specification" 1.1.x (4096-byte binary header, then the
JSON metadata area up to ``hdr_size``; a secondary copy with magic
``SKUL\\xba\\xbe`` follows the primary, first at 0x4000).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

MAGIC_PRIMARY = b"LUKS\xba\xbe"
MAGIC_SECONDARY = b"SKUL\xba\xbe"
SECONDARY_OFFSET = 0x4000
"""Where the LUKS2 secondary header sits with the default 16 KiB metadata size."""
READ_SIZE = SECONDARY_OFFSET + 4096
"""Bytes to read from a device to find a primary or the default secondary header."""
MAX_HEADER = 4 * 1024 * 1024
"""LUKS2 allows metadata areas of up to 4 MiB (spec, table 2)."""


class LuksFormatError(ValueError):
    """The LUKS magic is there but the header is damaged or truncated."""


@dataclass(frozen=True)
class LuksHeader:
    """Facts from a LUKS header (no key material)."""

    version: int
    cipher: Optional[str]
    """e.g. ``aes-xts-plain64`` (LUKS2: data segment ``encryption``; LUKS1: name-mode)."""
    uuid: str
    label: Optional[str]
    key_bits: Optional[int]
    kdfs: Tuple[str, ...]
    """Key-derivation functions of the active key slots (pbkdf2, argon2i, argon2id)."""
    from_secondary: bool = False
    """True when only the LUKS2 secondary header was readable."""
    header_size: int = 0
    """Bytes of header the parser needs (LUKS2 ``hdr_size``); callers read this much."""


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", errors="replace")


def has_magic(data: bytes) -> bool:
    """True when ``data`` (read from offset 0 of a device) starts a LUKS device."""
    return data[:6] == MAGIC_PRIMARY or data[SECONDARY_OFFSET : SECONDARY_OFFSET + 6] == MAGIC_SECONDARY


def parse_luks_header(data: bytes) -> Optional[LuksHeader]:
    """Parse the header in ``data`` (bytes from offset 0 of a device).

    Returns None when there is no LUKS magic; raises :class:`LuksFormatError`
    when the magic is there but the rest is not a valid header.
    """
    if data[:6] == MAGIC_PRIMARY:
        return _parse_at(data, 0)
    if data[SECONDARY_OFFSET : SECONDARY_OFFSET + 6] == MAGIC_SECONDARY:
        return _parse_at(data, SECONDARY_OFFSET)
    return None


def required_size(data: bytes) -> int:
    """How many bytes from offset 0 the full header needs (LUKS2 JSON area included)."""
    if data[:6] == MAGIC_PRIMARY and len(data) >= 16 and struct.unpack(">H", data[6:8])[0] == 2:
        hdr_size = struct.unpack(">Q", data[8:16])[0]
        return int(min(max(hdr_size, READ_SIZE), MAX_HEADER))
    if data[SECONDARY_OFFSET : SECONDARY_OFFSET + 6] == MAGIC_SECONDARY and len(data) >= SECONDARY_OFFSET + 16:
        hdr_size = struct.unpack(">Q", data[SECONDARY_OFFSET + 8 : SECONDARY_OFFSET + 16])[0]
        return int(SECONDARY_OFFSET + min(max(hdr_size, 4096), MAX_HEADER))
    return READ_SIZE


def _parse_at(data: bytes, offset: int) -> LuksHeader:
    head = data[offset:]
    if len(head) < 8:
        raise LuksFormatError("LUKS header truncated before the version field")
    version = struct.unpack(">H", head[6:8])[0]
    if version == 1 and offset == 0:
        return _parse_luks1(head)
    if version == 2:
        return _parse_luks2(head, offset != 0)
    raise LuksFormatError(f"unknown LUKS version {version}")


def _parse_luks1(head: bytes) -> LuksHeader:
    # phdr: magic 6, version 2, cipher-name 32, cipher-mode 32, hash-spec 32,
    # payload-offset 4, key-bytes 4, mk-digest 20, mk-digest-salt 32,
    # mk-digest-iter 4, uuid 40, then 8 key slots of 48 bytes (total 592).
    if len(head) < 592:
        raise LuksFormatError(f"LUKS1 header truncated ({len(head)} of 592 bytes)")
    name, mode, hash_spec = _cstr(head[8:40]), _cstr(head[40:72]), _cstr(head[72:104])
    key_bytes = struct.unpack(">I", head[108:112])[0]
    uuid = _cstr(head[168:208])
    if not name or not uuid:
        raise LuksFormatError("LUKS1 header has an empty cipher name or uuid")
    active = 0
    for slot in range(8):
        start = 208 + slot * 48
        # Key slot state 0x00AC71F3 = active (spec, section 2.4).
        if struct.unpack(">I", head[start : start + 4])[0] == 0x00AC71F3:
            active += 1
    kdfs = (f"pbkdf2-{hash_spec}",) if active else ()
    return LuksHeader(1, f"{name}-{mode}" if mode else name, uuid, None, key_bytes * 8, kdfs, header_size=592)


def _parse_luks2(head: bytes, from_secondary: bool) -> LuksHeader:
    # Binary header: magic 6, version 2, hdr_size 8, seqid 8, label 48,
    # checksum_alg 32, salt 64, uuid 40, subsystem 48, hdr_offset 8, …, 4096 bytes.
    if len(head) < 4096:
        raise LuksFormatError(f"LUKS2 binary header truncated ({len(head)} of 4096 bytes)")
    hdr_size = struct.unpack(">Q", head[8:16])[0]
    if hdr_size < 4096 * 4 or hdr_size > MAX_HEADER:
        raise LuksFormatError(f"LUKS2 hdr_size {hdr_size} outside 16 KiB..4 MiB")
    label = _cstr(head[24:72]) or None
    uuid = _cstr(head[168:208])
    if len(head) < hdr_size:
        raise LuksFormatError(f"LUKS2 header truncated ({len(head)} of {hdr_size} bytes)")
    metadata = _json_area(head[4096:hdr_size])
    cipher, key_bits, kdfs = _from_metadata(metadata)
    return LuksHeader(2, cipher, uuid, label, key_bits, kdfs, from_secondary, int(hdr_size))


def _json_area(raw: bytes) -> Dict[str, Any]:
    text = raw.split(b"\0", 1)[0]
    try:
        value = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise LuksFormatError(f"LUKS2 JSON metadata unreadable: {err}") from None
    if not isinstance(value, dict):
        raise LuksFormatError("LUKS2 JSON metadata is not an object")
    return value


def _from_metadata(meta: Dict[str, Any]) -> Tuple[Optional[str], Optional[int], Tuple[str, ...]]:
    segments = meta.get("segments")
    keyslots = meta.get("keyslots")
    if not isinstance(segments, dict) or not isinstance(keyslots, dict):
        raise LuksFormatError("LUKS2 JSON metadata lacks 'segments' or 'keyslots'")
    cipher: Optional[str] = None
    for key in sorted(segments, key=lambda k: int(k) if k.isdigit() else 0):
        segment = segments[key]
        if isinstance(segment, dict) and segment.get("type") == "crypt":
            cipher = str(segment.get("encryption")) if segment.get("encryption") else None
            break
    key_bits: Optional[int] = None
    kdfs: List[str] = []
    for slot in keyslots.values():
        if not isinstance(slot, dict):
            continue
        if key_bits is None and isinstance(slot.get("key_size"), int):
            key_bits = int(slot["key_size"]) * 8
        kdf = slot.get("kdf")
        if isinstance(kdf, dict) and isinstance(kdf.get("type"), str) and kdf["type"] not in kdfs:
            kdfs.append(kdf["type"])
    return cipher, key_bits, tuple(kdfs)


def parse_udev_properties(text: str) -> Dict[str, str]:
    """The ``E:KEY=value`` lines of a udev database file (/run/udev/data/b<maj>:<min>).

    udev's blkid builtin stores ``ID_FS_TYPE=crypto_LUKS``, ``ID_FS_VERSION`` and
    ``ID_FS_UUID`` there; the files are world-readable, so this works without root.
    """
    props: Dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("E:") and "=" in line:
            key, _, value = line[2:].partition("=")
            props[key] = value
    return props
