"""Which antivirus/EDR products Tillsyn recognises, and how each shows itself (pure).

A product is *installed* when one of its systemd unit files or install paths
exists, and *running* when a process has one of its names or runs a program
below one of its install directories.  Names come from the vendors' Linux
packages (unit files and daemons as shipped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple


@dataclass(frozen=True)
class Product:
    key: str
    name: str
    units: Tuple[str, ...]
    processes: Tuple[str, ...]
    paths: Tuple[str, ...] = ()
    """Files or directories whose presence means the product is installed."""
    program_dirs: Tuple[str, ...] = ()
    """A process whose program lies below one of these belongs to the product."""


PRODUCTS: Tuple[Product, ...] = (
    Product(
        "clamav",
        "ClamAV",
        (
            "clamav-daemon.service",
            "clamav-freshclam.service",
            "clamav-clamonacc.service",
            "clamd@.service",
            "clamonacc.service",
        ),
        ("clamd", "freshclam", "clamonacc"),
        ("/usr/sbin/clamd",),
    ),
    Product(
        "mdatp",
        "Microsoft Defender for Endpoint",
        ("mdatp.service",),
        ("wdavdaemon",),
        ("/opt/microsoft/mdatp",),
        ("/opt/microsoft/mdatp/",),
    ),
    Product(
        "crowdstrike",
        "CrowdStrike Falcon",
        ("falcon-sensor.service",),
        ("falcond", "falcon-sensor"),
        ("/opt/CrowdStrike",),
        ("/opt/CrowdStrike/",),
    ),
    Product(
        "sentinelone",
        "SentinelOne",
        ("sentinelone.service",),
        ("s1-agent", "s1-orchestrator", "s1-scanner", "s1-network", "sentinelone-agent"),
        ("/opt/sentinelone",),
        ("/opt/sentinelone/",),
    ),
    Product(
        "sophos",
        "Sophos",
        ("sophos-spl.service", "sav-protect.service"),
        ("sophos_watchdog", "sophos_threat_detector", "sophosav", "savd"),
        ("/opt/sophos-spl", "/opt/sophos-av"),
        ("/opt/sophos-spl/", "/opt/sophos-av/"),
    ),
    Product(
        "eset",
        "ESET",
        ("esets.service", "efs.service", "eea.service"),
        ("esets_daemon", "eset_rtp", "efs"),
        ("/opt/eset",),
        ("/opt/eset/",),
    ),
    Product(
        "trendmicro",
        "Trend Micro Deep Security",
        ("ds_agent.service",),
        ("ds_agent", "ds_am"),
        ("/opt/ds_agent",),
        ("/opt/ds_agent/",),
    ),
)


@dataclass(frozen=True)
class ProcessInfo:
    """One process as the single shared pass saw it."""

    pid: int
    name: str
    cmdline: Tuple[str, ...]
    """Empty when it could not be read."""


def process_matches(product: Product, proc: ProcessInfo) -> bool:
    if proc.name in product.processes:
        return True
    program = proc.cmdline[0] if proc.cmdline else ""
    return any(program.startswith(prefix) for prefix in product.program_dirs)


def processes_of(product: Product, processes: Sequence[ProcessInfo]) -> List[ProcessInfo]:
    return [p for p in processes if process_matches(product, p)]


def looked_for() -> str:
    """For the not-present reason: every unit and process name searched."""
    return "; ".join(f"{p.name} (units {', '.join(p.units)}; processes {', '.join(p.processes)})" for p in PRODUCTS)


def by_key(key: str) -> Optional[Product]:
    found: Dict[str, Product] = {p.key: p for p in PRODUCTS}
    return found.get(key)
