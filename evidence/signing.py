"""Ed25519 signatures over exact bytes: the node signs, the centre and auditors verify.

Keys travel as base64 of their 32 raw bytes; a key's fingerprint is the hex
SHA-256 of those bytes.  Verification takes the exact bytes that were signed,
so nothing is re-serialised between signing and checking.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_SCHEME = "ed25519"


class SignatureError(ValueError):
    """A key or signature is malformed, or the signature does not match."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as err:
        raise SignatureError(f"{what} is not valid base64") from err


def new_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_private_key_pem(data: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError("the key file does not hold an Ed25519 private key")
    return key


def public_key_text(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return b64(raw)


@lru_cache(maxsize=4096)
def load_public_key(text: str) -> Ed25519PublicKey:
    """The key of ``text``; kept for the next request of the same node (a key object is immutable)."""
    raw = unb64(text, "public key")
    if len(raw) != 32:
        raise SignatureError(f"public key must be 32 bytes, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def fingerprint(public_key: str) -> str:
    """Hex SHA-256 of the raw public key: how people and logs name a node's key."""
    return hashlib.sha256(unb64(public_key, "public key")).hexdigest()


def sign(key: Ed25519PrivateKey, body: bytes) -> str:
    """The signature of ``body``, as ``ed25519 <base64>``."""
    return f"{SIGNATURE_SCHEME} {b64(key.sign(body))}"


def verify(public_key: str, body: bytes, signature: str) -> None:
    """Raise :class:`SignatureError` unless ``signature`` is ``body`` signed by ``public_key``."""
    scheme, _, value = signature.strip().partition(" ")
    if scheme != SIGNATURE_SCHEME or not value:
        raise SignatureError(f"signature must be '{SIGNATURE_SCHEME} <base64>'")
    raw = unb64(value, "signature")
    if len(raw) != 64:
        raise SignatureError(f"signature must be 64 bytes, got {len(raw)}")
    try:
        load_public_key(public_key).verify(raw, body)
    except InvalidSignature as err:
        raise SignatureError("signature does not match the body and the node's key") from err
