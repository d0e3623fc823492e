"""Parse ``mdatp health --output json`` (Microsoft Defender for Endpoint on Linux), pure.

The JSON names fields in camelCase (``appVersion``, ``realTimeProtectionEnabled``);
some values are wrapped as ``{"value": ...}``, the definitions status as
``{"$type": "upToDate"}``, and ``definitionsUpdated`` is milliseconds since the
epoch, often as a string.  Field meanings: Microsoft Learn, "Investigate agent
health issues" (defender-endpoint/health-status).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def _snake(name: str) -> str:
    return _CAMEL.sub(r"_\1", name).lower()


def _unwrap(value: Any) -> Any:
    """``{"value": x}`` → x; ``{"$type": t}`` → t; anything else unchanged."""
    if isinstance(value, dict):
        if "value" in value:
            return value["value"]
        if "$type" in value:
            return value["$type"]
    return value


@dataclass(frozen=True)
class MdatpHealth:
    """The health facts Tillsyn keeps; ``None`` where mdatp did not report the field."""

    healthy: Optional[bool]
    health_issues: List[str]
    licensed: Optional[bool]
    app_version: Optional[str]
    engine_version: Optional[str]
    definitions_version: Optional[str]
    definitions_status: Optional[str]
    definitions_updated: Optional[datetime]
    real_time_protection_enabled: Optional[bool]
    real_time_protection_subsystem: Optional[str]
    passive_mode_enabled: Optional[bool]


def _bool(fields: Dict[str, Any], name: str) -> Optional[bool]:
    value = fields.get(name)
    return value if isinstance(value, bool) else None


def _str(fields: Dict[str, Any], name: str) -> Optional[str]:
    value = fields.get(name)
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


def _millis(value: Any) -> Optional[datetime]:
    text = str(value).strip('"') if value is not None else ""
    if not text.isdigit():
        return None
    return datetime.fromtimestamp(int(text) / 1000, timezone.utc)


def parse_mdatp_health(text: str) -> MdatpHealth:
    """Parse the JSON object; raises ``ValueError`` when the text is not one."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"mdatp health output is not JSON: {err.msg} at line {err.lineno}") from err
    if not isinstance(data, dict):
        raise ValueError(f"mdatp health output is JSON {type(data).__name__}, not an object")
    fields = {_snake(key): _unwrap(value) for key, value in data.items()}
    issues = fields.get("health_issues")
    return MdatpHealth(
        healthy=_bool(fields, "healthy"),
        health_issues=[str(i) for i in issues] if isinstance(issues, list) else [],
        licensed=_bool(fields, "licensed"),
        app_version=_str(fields, "app_version"),
        engine_version=_str(fields, "engine_version"),
        definitions_version=_str(fields, "definitions_version"),
        definitions_status=_str(fields, "definitions_status"),
        definitions_updated=_millis(fields.get("definitions_updated")),
        real_time_protection_enabled=_bool(fields, "real_time_protection_enabled"),
        real_time_protection_subsystem=_str(fields, "real_time_protection_subsystem"),
        passive_mode_enabled=_bool(fields, "passive_mode_enabled"),
    )
