"""Password hashing with Argon2id (memory-hard; OWASP's recommended parameters)."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# OWASP Password Storage Cheat Sheet: Argon2id, m=19 MiB, t=2, p=1.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
MIN_LENGTH = 12
# Verified against when the user does not exist, so a wrong username costs as long as a wrong password.
_DUMMY = _HASHER.hash("tillsyn-no-such-user-dummy-password")


class WeakPassword(ValueError):
    """The password is refused; the message says why."""


def check_strength(password: str, username: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if username.lower() in password.lower():
        raise WeakPassword("a password must not contain the username")


def generate(username: str) -> str:
    """A random password (120 bits, 20 URL-safe characters) an admin hands over once."""
    name = username.strip().lower()
    while True:
        password = secrets.token_urlsafe(15)
        if not name or name not in password.lower():  # "" is in every string: never wait on it
            return password


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def burn_time(password: str) -> None:
    """Spend a verification's time for an unknown user (no username enumeration by timing)."""
    verify_password(_DUMMY, password)


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)
