"""The node's Ed25519 key and its enrolment record in the state directory.

The key is created once (mode 0600) and never overwritten silently: losing it
means re-enrolling, which the centre shows as a possible clone.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.errors import IdentityError
from agent.state import read_json, write_json
from collectors.atomic_file import write_atomic
from evidence.signing import load_private_key_pem, new_private_key, private_key_pem, public_key_text
from evidence.wire import Privacy

KEY_FILE = "agent.key"
ENROLMENT_FILE = "enrolment.json"


def load_or_create_key(state: Path) -> Ed25519PrivateKey:
    path = state / KEY_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        key = new_private_key()
        write_atomic(path, private_key_pem(key), 0o600)
        return key
    if os.stat(path).st_mode & 0o077:
        raise IdentityError(f"{path}: readable by others; run: chmod 600 {path}")
    try:
        return load_private_key_pem(data)
    except ValueError as err:
        raise IdentityError(f"{path}: not a usable Ed25519 key ({err}); move it away to enrol anew") from err


def load_key(state: Path) -> Ed25519PrivateKey:
    path = state / KEY_FILE
    if not path.exists():
        raise IdentityError(f"{path}: no key; enrol first: tillsyn-agent enroll --server URL --token TOKEN")
    return load_or_create_key(state)


@dataclass(frozen=True)
class Enrolment:
    agent_id: str
    server: str
    ca_file: Optional[str]
    public_key: str
    heartbeat_interval: Optional[int] = None
    """What the centre asked for at enrolment: it marks a node silent after 3 of them."""

    def to_dict(self) -> Dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "server": self.server,
            "ca_file": self.ca_file,
            "public_key": self.public_key,
            "heartbeat_interval": self.heartbeat_interval,
        }


def load_enrolment(state: Path) -> Enrolment:
    try:
        data = read_json(state / ENROLMENT_FILE)
    except ValueError as err:
        raise IdentityError(f"{err}; enrol again: tillsyn-agent enroll --server URL --token T") from err
    if data is None:
        raise IdentityError(f"{state / ENROLMENT_FILE}: not enrolled; run: tillsyn-agent enroll --server URL --token T")
    try:
        interval = data.get("heartbeat_interval")
        return Enrolment(
            str(data["agent_id"]),
            str(data["server"]),
            data.get("ca_file"),
            str(data["public_key"]),
            int(interval) if isinstance(interval, int) and interval > 0 else None,
        )
    except KeyError as err:
        raise IdentityError(f"{state / ENROLMENT_FILE}: lacks {err.args[0]!r}; enrol again") from err


def save_enrolment(state: Path, enrolment: Enrolment) -> None:
    write_json(state / ENROLMENT_FILE, enrolment.to_dict())


def public_key_of(key: Ed25519PrivateKey) -> str:
    return public_key_text(key)


def privacy_setting(state: Path, pseudonymise: bool) -> Privacy:
    """What this node reports about its pseudonymisation (M13): on or off, and which key (its
    SHA-256's first 12 hex digits, so the centre can tell which nodes share a key; never the key)."""
    if not pseudonymise:
        return Privacy(False, None)
    return Privacy(True, hashlib.sha256(pseudonym_key(state)).hexdigest()[:12])


def pseudonym_key(state: Path) -> bytes:
    """The key of the keyed hash that pseudonymises usernames (created once, mode 0600)."""
    path = state / "pseudonym.key"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        key = os.urandom(32)
        write_atomic(path, key, 0o600)
        return key
