"""accounts collector (M05): local accounts, their passwords, logins, sudo rights and SSH keys.

Modules: ``settings`` (schema, watched paths), ``parse_passwd``, ``parse_sudoers``,
``parse_keys``, ``parse_logins`` (pure parsers), ``report`` (pure assembly), ``collect``
(I/O through the Context).
"""

from __future__ import annotations

from collectors.accounts.collect import collect, summary
from collectors.accounts.settings import SETTINGS, watch_paths
from collectors.base import CollectorSpec

SPEC = CollectorSpec(
    name="accounts",
    version="1.1",
    controls=("M05",),
    collect=collect,
    settings=SETTINGS,
    summary=summary,
    watch_paths=watch_paths,
)
