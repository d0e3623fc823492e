"""The modern algorithm set sshd's offer is compared with, and OpenSSH's list modifiers.

The modern set follows Mozilla's OpenSSH guideline ("modern", 2023) and the OpenSSH 9.x
defaults without SHA-1 or 64-bit tags: authenticated encryption or CTR ciphers, encrypt-then-MAC
with SHA-2 or UMAC-128, and key exchanges on Curve25519, the NIST curves, a post-quantum hybrid
or SHA-2 finite-field groups of 2048 bits and more.  Anything else sshd offers is reported as
not modern (CBC modes, 3DES, arcfour, hmac-sha1, umac-64, diffie-hellman-group1/14-sha1 …).
"""

from __future__ import annotations

from typing import Dict, List, Tuple

MODERN: Dict[str, Tuple[str, ...]] = {
    "ciphers": (
        "chacha20-poly1305@openssh.com",
        "aes256-gcm@openssh.com",
        "aes128-gcm@openssh.com",
        "aes256-ctr",
        "aes192-ctr",
        "aes128-ctr",
    ),
    "macs": (
        "hmac-sha2-512-etm@openssh.com",
        "hmac-sha2-256-etm@openssh.com",
        "umac-128-etm@openssh.com",
        "hmac-sha2-512",
        "hmac-sha2-256",
        "umac-128@openssh.com",
    ),
    "kexalgorithms": (
        "mlkem768x25519-sha256",
        "sntrup761x25519-sha512",
        "sntrup761x25519-sha512@openssh.com",
        "curve25519-sha256",
        "curve25519-sha256@libssh.org",
        "ecdh-sha2-nistp521",
        "ecdh-sha2-nistp384",
        "ecdh-sha2-nistp256",
        "diffie-hellman-group-exchange-sha256",
        "diffie-hellman-group16-sha512",
        "diffie-hellman-group18-sha512",
        "diffie-hellman-group14-sha256",
    ),
}

# OpenSSH 9.2p1's compiled-in defaults (Debian 12; sshd_config(5)), used when the files are
# parsed and do not set the list.
DEFAULTS: Dict[str, Tuple[str, ...]] = {
    "ciphers": (
        "chacha20-poly1305@openssh.com",
        "aes128-ctr",
        "aes192-ctr",
        "aes256-ctr",
        "aes128-gcm@openssh.com",
        "aes256-gcm@openssh.com",
    ),
    "macs": (
        "umac-64-etm@openssh.com",
        "umac-128-etm@openssh.com",
        "hmac-sha2-256-etm@openssh.com",
        "hmac-sha2-512-etm@openssh.com",
        "hmac-sha1-etm@openssh.com",
        "umac-64@openssh.com",
        "umac-128@openssh.com",
        "hmac-sha2-256",
        "hmac-sha2-512",
        "hmac-sha1",
    ),
    "kexalgorithms": (
        "sntrup761x25519-sha512@openssh.com",
        "curve25519-sha256",
        "curve25519-sha256@libssh.org",
        "ecdh-sha2-nistp256",
        "ecdh-sha2-nistp384",
        "ecdh-sha2-nistp521",
        "diffie-hellman-group-exchange-sha256",
        "diffie-hellman-group16-sha512",
        "diffie-hellman-group18-sha512",
        "diffie-hellman-group14-sha256",
    ),
}
KINDS = {"ciphers": "cipher", "macs": "mac", "kexalgorithms": "kex"}


def resolve_list(keyword: str, value: str) -> List[str]:
    """A list as sshd applies it: ``+x`` appends to the default, ``-x`` removes (wildcards not
    expanded here), ``^x`` puts first, anything else replaces it (sshd_config(5))."""
    default = list(DEFAULTS[keyword])
    value = value.strip()
    if value.startswith("+"):
        return default + [n for n in value[1:].split(",") if n and n not in default]
    if value.startswith("-"):
        drop = set(value[1:].split(","))
        return [n for n in default if n not in drop]
    if value.startswith("^"):
        first = [n for n in value[1:].split(",") if n]
        return first + [n for n in default if n not in first]
    return [n for n in value.split(",") if n]


def not_modern(offered: Dict[str, List[str]]) -> List[Dict[str, str]]:
    """Every offered algorithm outside the modern set, as ``{kind, name}``."""
    found = []
    for keyword, names in offered.items():
        allowed = set(MODERN[keyword])
        found += [{"kind": KINDS[keyword], "name": n} for n in names if n not in allowed]
    return found
