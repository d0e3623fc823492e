"""Antivirus / EDR evidence for control M03 (protection against malicious code).

ClamAV (clamd over its socket, signature database headers, freshclam, on-access),
Microsoft Defender for Endpoint (``mdatp health``) and other agents by unit file
and process.  See docs/collectors/antivirus.md.
"""

from __future__ import annotations

from typing import Any, List, Mapping, Sequence

from collectors.antivirus.collect import collect
from collectors.antivirus.schema import SCHEMA
from collectors.base import CollectorSpec

__all__ = ["SPEC"]


def summary(observed: Mapping[str, Any]) -> str:
    """E.g. ``ClamAV running, signatures 2026-11-25T09:24:01Z, on-access off; mdatp running, real-time on``."""
    parts: List[str] = []
    for product in observed.get("products", []):
        running = product.get("running")
        state = "running" if running else ("not running" if running is False else "running: unknown")
        words = [f"{product.get('name') or product.get('product')} {state}"]
        if product.get("signature_time"):
            words.append(f"signatures {product['signature_time']}")
        rtp = product.get("real_time_protection")
        if rtp is not None:
            words.append(f"real-time {'on' if rtp else 'off'}")
        parts.append(", ".join(words))
    return "; ".join(parts) or "no antivirus"


def watch_paths(settings: Mapping[str, Any]) -> Sequence[str]:
    """The ClamAV configuration and the daily database (rewritten by every update)."""
    db_dir = str(settings.get("database_dir") or "/var/lib/clamav").rstrip("/")
    return (
        str(settings.get("clamd_conf", "/etc/clamav/clamd.conf")),
        str(settings.get("freshclam_conf", "/etc/clamav/freshclam.conf")),
        f"{db_dir}/daily.cld",
        f"{db_dir}/daily.cvd",
    )


SPEC = CollectorSpec(
    name="antivirus",
    version="1.1.0",
    controls=("M03",),
    collect=collect,
    settings=SCHEMA,
    summary=summary,
    watch_paths=watch_paths,
)
