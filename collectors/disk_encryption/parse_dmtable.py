"""Pure parser for ``dmsetup table --target crypt`` (needs root).

dmsetup(8) prints ``<name>: <start> <length> crypt <cipher> <key> <iv_offset>
<device> <offset> [<#opt> <opts>…]`` per segment (the name prefix when listing
all devices); the key is shown as zeros or a keyring reference, never the key
itself without ``--showkeys``.  Table format: Linux
Documentation/admin-guide/device-mapper/dm-crypt.rst.
"""

from __future__ import annotations

from typing import Dict


class DmTableFormatError(ValueError):
    """A line that is not a crypt table line."""


def parse_crypt_table(text: str) -> Dict[str, str]:
    """dm name -> cipher spec (``aes-xts-plain64``, or ``capi:…`` kernel crypto API form)."""
    ciphers: Dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.strip() == "No devices found":
            continue
        name, sep, rest = line.partition(": ")
        if not sep:
            raise DmTableFormatError(f"dmsetup table line {number}: no '<name>: ' prefix")
        fields = rest.split()
        if len(fields) < 4 or fields[2] != "crypt":
            raise DmTableFormatError(f"dmsetup table line {number}: not a crypt target line")
        ciphers.setdefault(name, fields[3])
    return ciphers
