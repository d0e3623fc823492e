"""Time collector (M06): is the clock synchronised, by which daemon, to what, and how far off.

Logs are evidence only with a right clock.  Modules: ``settings`` (the schema), ``collect``
(asks chronyc, timedatectl and ntpq through the runner), and the pure parsers ``parse_chrony``,
``parse_timesyncd`` and ``parse_ntpq``.
"""

from __future__ import annotations

from collectors.base import CollectorSpec
from collectors.time.collect import collect, summary
from collectors.time.settings import SETTINGS

SPEC = CollectorSpec(
    name="time",
    version="1.0",
    controls=("M06",),
    collect=collect,
    settings=SETTINGS,
    summary=summary,
)
