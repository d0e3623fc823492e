"""Power collector (M01): UPS state through NUT's upsd and apcupsd's NIS, host batteries
from /sys/class/power_supply, and whether a shutdown client (upsmon, apcupsd) is set up.

Modules: ``settings`` (keys, watched files), ``collect`` (servers, sysfs and shutdown clients
through the context, assembled into the outcome), ``quick`` (the status check the daemon
polls), ``read_servers`` (sockets to upsd and apcupsd), pure parsers ``parse_nut``,
``parse_apcupsd``, ``parse_status_flags``, ``parse_values``, ``parse_power_supply``,
``parse_shutdown_config``, and the records in ``model``.
"""

from __future__ import annotations

from collectors.base import CollectorSpec
from collectors.power.collect import collect, summary
from collectors.power.quick import status_key
from collectors.power.settings import SETTINGS, watch_paths

SPEC = CollectorSpec(
    name="power",
    version="1.1",
    controls=("M01",),
    collect=collect,
    settings=SETTINGS,
    summary=summary,
    watch_paths=watch_paths,
    quick_check=status_key,
    poll=5.0,
)
