"""Updates collector (ISO 27001 A.8.8, part of M03): pending and security updates, the age of the
package lists, whether a reboot is required, and the running kernel against the newest installed.

Modules: ``settings`` (the schema), ``collect`` (the cheap facts, every run), ``read_simulation`` (the
slow simulated upgrade, cached between runs), and the pure parsers ``parse_apt``, ``parse_dnf``
and ``parse_kernel``.  It never refreshes package lists unless ``refresh`` is set.
"""

from __future__ import annotations

from collectors.base import CollectorSpec
from collectors.updates.collect import collect, summary
from collectors.updates.settings import SETTINGS

SPEC = CollectorSpec(
    name="updates",
    version="1.0",
    controls=("M03",),
    collect=collect,
    settings=SETTINGS,
    summary=summary,
    # the simulated upgrade inside may take a minute or two when it is due (every 6 h)
    interval=900,
    timeout=300.0,
)
