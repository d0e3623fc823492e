"""Shared helpers for the power collector tests: contexts, free ports."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Dict

from collectors.base import Context
from collectors.power import SPEC
from collectors.settings import validate

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "power"


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def context(root: Path, **settings: Any) -> Context:
    """A context below ``root`` whose default servers point at ports where nothing listens."""
    merged: Dict[str, Any] = {
        "nut_servers": [{"host": "127.0.0.1", "port": free_port()}],
        "apcupsd_servers": [{"host": "127.0.0.1", "port": free_port()}],
        "server_timeout": 2.0,
    }
    merged.update(settings)
    return Context(root=root, settings=validate(merged, SPEC.settings, "collectors.power"))
