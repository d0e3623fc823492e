"""Pure parser for a /sys/class/power_supply/<name>/uevent file.

Kernel ABI (Documentation/ABI/testing/sysfs-class-power): ``POWER_SUPPLY_<PROP>=value``
lines; TYPE is Battery, Mains, UPS, USB, ...; STATUS Charging/Discharging/Full/
Not charging/Unknown; CAPACITY in percent; ONLINE and PRESENT 0/1; SCOPE
``Device`` marks a peripheral's battery (mouse, keyboard), not the host's power.
"""

from __future__ import annotations

from typing import Dict, Optional

from collectors.power.model import PowerSupply

PREFIX = "POWER_SUPPLY_"


def parse_uevent(text: str) -> Dict[str, str]:
    """``POWER_SUPPLY_CAPACITY=98`` lines -> {"CAPACITY": "98"}; other lines are ignored."""
    props: Dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith(PREFIX):
            props[key[len(PREFIX) :]] = value.strip()
    return props


def _int(value: Optional[str]) -> Optional[int]:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _flag(value: Optional[str]) -> Optional[bool]:
    number = _int(value)
    return None if number is None else number != 0


def supply_from_uevent(name: str, text: str, type_file: Optional[str] = None) -> PowerSupply:
    """A :class:`PowerSupply` from its uevent; ``type_file`` is the ``type`` attribute,
    used when the uevent lacks POWER_SUPPLY_TYPE (kernels before 5.x did not put it there)."""
    props = parse_uevent(text)
    kind = props.get("TYPE") or (type_file.strip() if type_file else None) or None
    capacity = _int(props.get("CAPACITY"))
    return PowerSupply(
        name=props.get("NAME") or name,
        type=kind,
        status=props.get("STATUS") or None,
        online=_flag(props.get("ONLINE")),
        present=_flag(props.get("PRESENT")),
        capacity_pct=capacity if capacity is not None and 0 <= capacity <= 100 else None,
        scope=props.get("SCOPE") or None,
        model=props.get("MODEL_NAME") or None,
        manufacturer=props.get("MANUFACTURER") or None,
    )


def is_host_power(supply: PowerSupply) -> bool:
    """A battery or UPS that powers this host (not a peripheral's battery, not a charger)."""
    return supply.type in ("Battery", "UPS") and (supply.scope or "System") != "Device"
