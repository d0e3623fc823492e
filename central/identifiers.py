"""Identifiers and secrets the centre hands out, and the largest row id a database holds."""

from __future__ import annotations

import hashlib
import secrets

ROW_MAX = 2**63 - 1
"""The largest integer a SQLite INTEGER or a PostgreSQL bigint holds: a row id above it is none."""


def new_id() -> str:
    """A 22-character URL-safe random id (128 bits) that never starts with ``-``.

    An id starting with a dash reads as an option on a command line (``window cancel -PQ...``).
    """
    while True:
        value = secrets.token_urlsafe(16)
        if not value.startswith("-"):
            return value


def new_secret(prefix: str) -> str:
    """A bearer secret shown once, e.g. an enrolment token ``tse_...``."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def secret_hash(secret: str) -> str:
    """How secrets are stored: SHA-256 (they are 256-bit random, so no stretching is needed)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
