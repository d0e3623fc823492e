"""The typed records the power collector reports: one UPS, one power supply, one server."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional


@dataclass
class Ups:
    """One UPS as seen through NUT's upsd or apcupsd's NIS (facts only, units in names)."""

    source: str
    """``"nut"`` or ``"apcupsd"``."""
    name: str
    server: str
    """``host:port`` of the upsd / apcupsd that reported it."""
    status_raw: Optional[str] = None
    flags: List[str] = field(default_factory=list)
    status_unmapped: List[str] = field(default_factory=list)
    on_line: Optional[bool] = None
    battery_charge_pct: Optional[float] = None
    runtime_s: Optional[int] = None
    load_pct: Optional[float] = None
    self_test_result: Optional[str] = None
    """The last self-test's result; None when the UPS reports none (apcupsd ``NO``)."""
    self_test_result_raw: Optional[str] = None
    self_test_date: Optional[str] = None
    self_test_date_raw: Optional[str] = None
    model: Optional[str] = None
    manufacturer: Optional[str] = None
    description: Optional[str] = None
    error: Optional[str] = None
    """Why the server could not give this UPS's variables (e.g. NUT ``DATA-STALE``)."""

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @property
    def label(self) -> str:
        return f"{self.source} ups {self.name}@{self.server}"


@dataclass
class PowerSupply:
    """One entry of /sys/class/power_supply (kernel ABI sysfs-class-power)."""

    name: str
    type: Optional[str] = None
    status: Optional[str] = None
    online: Optional[bool] = None
    present: Optional[bool] = None
    capacity_pct: Optional[int] = None
    scope: Optional[str] = None
    model: Optional[str] = None
    manufacturer: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass
class ServerResult:
    """What one upsd or apcupsd NIS server answered."""

    source: str
    host: str
    port: int
    reachable: bool = False
    ups: List[Ups] = field(default_factory=list)
    error: Optional[str] = None
    refused: bool = False
    """The connection was refused: nothing listens there."""
    login: Optional[str] = None
    """``"ok"``, the server's refusal, or None when no login was attempted."""

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def to_dict(self) -> Dict[str, Any]:
        return {
            "source": self.source,
            "address": self.address,
            "reachable": self.reachable,
            "ups_count": len(self.ups) if self.reachable else None,
            "login": self.login,
            "error": self.error,
        }
