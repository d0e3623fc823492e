"""Parse authorized_keys (sshd(8), "AUTHORIZED_KEYS FILE FORMAT"): per key its type, size and
option names — never the key itself nor its comment (which often holds a person's address).

Pure.  The key's size is read from the key blob (RFC 4253 section 6.6): the modulus of RSA, the
curve of ECDSA; Ed25519 is 256 bits.  A line that cannot be read is counted, not raised.
"""

from __future__ import annotations

import base64
import binascii
import struct
from typing import Any, Dict, List, Optional, Tuple

KEY_TYPES = (
    "ssh-rsa",
    "ssh-dss",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-ed448",
)
FIXED_BITS = {
    "ssh-ed25519": 256,
    "sk-ssh-ed25519@openssh.com": 256,
    "ssh-ed448": 456,
    "ecdsa-sha2-nistp256": 256,
    "ecdsa-sha2-nistp384": 384,
    "ecdsa-sha2-nistp521": 521,
    "sk-ecdsa-sha2-nistp256@openssh.com": 256,
}


def _split_options(line: str) -> Tuple[str, str]:
    """(options, rest) of a line that does not start with a key type; quotes may hold spaces."""
    quoted = escaped = False
    for index, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True  # \" inside a quoted option (sshd's auth-options.c)
        elif char == '"':
            quoted = not quoted
        elif char in " \t" and not quoted:
            return line[:index], line[index:].strip()
    return line, ""


def _options(text: str) -> Tuple[List[str], List[str]]:
    """Option names in order, and the ``from=`` patterns (addresses are not secret)."""
    names: List[str] = []
    sources: List[str] = []
    current, quoted, escaped = "", False, False
    for char in text + ",":
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            name, _, value = current.partition("=")
            if name:
                names.append(name.lower())
                if name.lower() == "from":
                    sources += [p for p in value.strip('"').split(",") if p]
            current = ""
            continue
        current += char
    return names, sources


def _rsa_bits(blob: bytes) -> Optional[int]:
    try:
        offset = 0
        fields = []
        for _ in range(3):  # string "ssh-rsa", mpint e, mpint n
            (length,) = struct.unpack(">I", blob[offset : offset + 4])
            fields.append(blob[offset + 4 : offset + 4 + length])
            offset += 4 + length
        modulus = fields[2].lstrip(b"\x00")
        return int.from_bytes(modulus, "big").bit_length() if modulus else None
    except struct.error:
        return None


def key_record(key_type: str, blob_text: str, option_names: List[str], sources: List[str]) -> Dict[str, Any]:
    bits: Optional[int] = FIXED_BITS.get(key_type)
    if key_type == "ssh-rsa":
        try:
            bits = _rsa_bits(base64.b64decode(blob_text, validate=True))
        except (binascii.Error, ValueError):
            bits = None
    return {"type": key_type, "bits": bits, "options": option_names, "from": sources or None}


def parse_authorized_keys(text: str) -> Tuple[List[Dict[str, Any]], int]:
    """The keys of one file and how many lines could not be read."""
    keys: List[Dict[str, Any]] = []
    bad = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        options = ""
        if line.split(None, 1)[0] not in KEY_TYPES and not line.split(None, 1)[0].endswith("-cert-v01@openssh.com"):
            options, line = _split_options(line)
        parts = line.split()
        if len(parts) < 2 or not (parts[0] in KEY_TYPES or parts[0].endswith("-cert-v01@openssh.com")):
            bad += 1
            continue
        names, sources = _options(options)
        keys.append(key_record(parts[0], parts[1], names, sources))
    return keys, bad


def summarise(keys: List[Dict[str, Any]]) -> Dict[str, Any]:
    """``{count, types, keys}`` for one account."""
    return {"count": len(keys), "types": sorted({k["type"] for k in keys}), "keys": keys}
