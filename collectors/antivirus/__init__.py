"""Antivirus / EDR evidence for control M03 (protection against malicious code).

ClamAV (clamd over its socket, signature database headers, freshclam, on-access),
Microsoft Defender for Endpoint (``mdatp health``) and other agents by unit file
and process.  See docs/collectors/antivirus.md.

Modules: ``settings`` (keys, watched files), ``collect`` (which products are installed and
running, and the summary), ``read_system`` (one process pass, unit files), ``read_clamav`` and
``read_clamd`` (ClamAV's files and clamd's socket), ``read_defender`` (``mdatp health``), pure
parsers ``parse_clamconf``, ``parse_clamd``, ``parse_cvd``, ``parse_mdatp``, and the product
catalogue ``products``.
"""

from __future__ import annotations

from collectors.antivirus.collect import collect, summary
from collectors.antivirus.settings import SETTINGS, watch_paths
from collectors.base import CollectorSpec

SPEC = CollectorSpec(
    name="antivirus",
    version="1.1",
    controls=("M03",),
    collect=collect,
    settings=SETTINGS,
    summary=summary,
    watch_paths=watch_paths,
)
