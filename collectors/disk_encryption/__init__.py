"""disk_encryption: is every data filesystem and swap on an encrypted layer (control M02)?

Walks each mount's block-device stack in sysfs (partitions, md, LVM, dm-crypt),
asks ZFS about native encryption and its vdevs, and lists LUKS containers
present on the node, opened or not.  See docs/collectors/disk_encryption.md.

Modules: ``settings`` (keys, watched files), ``collect`` (mountinfo, swaps, sysfs, headers and
tool output through the context, then assembly, and the summary), ``read_sysfs`` and
``read_containers`` (the sysfs walk and LUKS header reads), pure parsers ``parse_lsblk``,
``parse_luks``, ``parse_dmtable``, ``parse_procfs``, ``parse_zfs``, and the pure decisions
``stack`` (is a device on an encrypting layer) and ``resolve`` (mounts and swaps to records)
over the device records in ``model``.
"""

from __future__ import annotations

from collectors.base import CollectorSpec
from collectors.disk_encryption.collect import collect, summary
from collectors.disk_encryption.settings import SETTINGS, watch_paths

SPEC = CollectorSpec(
    name="disk_encryption",
    version="1.1",
    controls=("M02",),
    collect=collect,
    settings=SETTINGS,
    summary=summary,
    watch_paths=watch_paths,
    interval=3600,
)
