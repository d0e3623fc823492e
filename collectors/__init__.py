"""Evidence collectors: one package per evidence area, pure parsers plus thin I/O.

``REGISTRY`` maps a collector's name to its :class:`~collectors.base.CollectorSpec`.
Importing this package imports every collector module but runs none of them.
"""

from __future__ import annotations

from typing import Dict

from collectors.base import CollectorSpec


def _load() -> Dict[str, CollectorSpec]:
    from collectors import (
        accounts,
        antivirus,
        backup,
        disk_encryption,
        file_integrity,
        firewall,
        logging,
        ports,
        power,
        service_access,
        sshd,
        time,
        updates,
    )

    specs = [
        power.SPEC,
        disk_encryption.SPEC,
        antivirus.SPEC,
        backup.SPEC,
        ports.SPEC,
        logging.SPEC,
        time.SPEC,
        sshd.SPEC,
        accounts.SPEC,
        updates.SPEC,
        firewall.SPEC,
        file_integrity.SPEC,
        service_access.SPEC,
    ]
    return {spec.name: spec for spec in specs}


REGISTRY: Dict[str, CollectorSpec] = _load()
