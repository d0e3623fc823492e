"""Microsoft Defender for Endpoint: run ``mdatp health --output json`` when mdatp is installed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

from collectors.base import Context
from evidence.model import Gap, utc_iso


@dataclass
class DefenderFacts:
    observed: Dict[str, Any] = field(default_factory=dict)
    gaps: List[Gap] = field(default_factory=list)
    version: Optional[str] = None
    signature_time: Optional[str] = None
    real_time_protection: Optional[bool] = None


def collect_defender(ctx: Context, settings: Mapping[str, Any]) -> Optional[DefenderFacts]:
    """None when the mdatp command is not installed (checked first: no needless subprocess)."""
    command = str(settings["mdatp_command"])
    if not ctx.path(command).exists():
        return None
    facts = DefenderFacts()
    result = ctx.command([command, "health", "--output", "json"], timeout=float(settings["mdatp_timeout"]))
    if not result.ok:
        # mdatp exits non-zero with a message when wdavdaemon is down or it lacks rights.
        facts.gaps.append(Gap("mdatp.health", result.describe_failure()))
        facts.observed = {"command": command, "health_read": False}
        return facts
    # Imported here: only machines with Defender installed need the parser (and its dataclass).
    from collectors.antivirus.parse_mdatp import parse_mdatp_health

    try:
        health = parse_mdatp_health(result.text)
    except ValueError as err:
        facts.gaps.append(Gap("mdatp.health", str(err)))
        facts.observed = {"command": command, "health_read": False}
        return facts
    updated = utc_iso(health.definitions_updated) if health.definitions_updated else None
    facts.observed = {
        "command": command,
        "health_read": True,
        "healthy": health.healthy,
        "health_issues": health.health_issues,
        "licensed": health.licensed,
        "app_version": health.app_version,
        "engine_version": health.engine_version,
        "definitions_version": health.definitions_version,
        "definitions_status": health.definitions_status,
        "definitions_updated": updated,
        "real_time_protection_enabled": health.real_time_protection_enabled,
        "real_time_protection_subsystem": health.real_time_protection_subsystem,
        "passive_mode_enabled": health.passive_mode_enabled,
    }
    for name in ("healthy", "definitions_updated", "real_time_protection_enabled"):
        if facts.observed[name] is None:
            facts.gaps.append(Gap(f"mdatp.{name}", "mdatp health did not report it"))
    facts.version = health.app_version
    facts.signature_time = updated
    facts.real_time_protection = health.real_time_protection_enabled
    return facts
