"""The thin I/O layer: read mountinfo, swaps, sysfs, headers and tool output, then assemble.

Commands run only when they can add something: ``zfs``/``zpool`` when ZFS
datasets are mounted, ``dmsetup`` as root when a dm-crypt device has no LUKS
header to read the cipher from.  A machine without encryption costs a few
file reads.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from collectors.base import Context, describe_os_error
from collectors.disk_encryption.parse_dmtable import DmTableFormatError, parse_crypt_table
from collectors.disk_encryption.parse_procfs import ProcFormatError, SwapEntry, parse_swaps
from collectors.disk_encryption.parse_zfs import ZfsFormatError, parse_zfs_get, parse_zpool_status
from collectors.disk_encryption.read_containers import find_containers
from collectors.disk_encryption.read_sysfs import SysfsUnreadable, read_block_devices
from collectors.disk_encryption.resolve import Scene, judge_mount, judge_swap_device
from collectors.disk_encryption.settings import SETTINGS
from collectors.disk_encryption.stack import Decision
from collectors.mounts import MountEntry, mount_holding, read_mountinfo
from collectors.settings import defaults
from evidence.model import Gap, Outcome


def _selected(mounts: List[MountEntry], settings: Dict[str, Any]) -> List[List[MountEntry]]:
    """Data mounts grouped by what they store (a bind mount joins its device's group)."""
    skip_types = set(settings["skip_fstypes"])
    skip_points = [p.rstrip("/") for p in settings["skip_mountpoints"]]
    groups: Dict[str, List[MountEntry]] = {}
    for entry in mounts:
        if entry.fstype in skip_types:
            continue
        if any(entry.mountpoint == p or entry.mountpoint.startswith(p + "/") for p in skip_points if p):
            continue
        key = f"zfs:{entry.source}" if entry.fstype == "zfs" else f"dev:{entry.majmin}"
        groups.setdefault(key, []).append(entry)
    return list(groups.values())


def _run_zfs(ctx: Context, scene: Scene, groups: List[List[MountEntry]], timeout: float) -> None:
    datasets = sorted({g[0].source for g in groups if g[0].fstype == "zfs"})
    if not datasets:
        return
    result = ctx.command(
        ["zfs", "get", "-H", "-p", "-o", "name,property,value", "encryption,keystatus,encryptionroot", *datasets],
        timeout=timeout,
    )
    if result.ok:
        try:
            scene.zfs_props = parse_zfs_get(result.text)
        except ZfsFormatError as err:
            scene.zfs_error = str(err)
    else:
        scene.zfs_error = result.describe_failure()
    pools = sorted({d.split("/", 1)[0] for d in datasets})
    result = ctx.command(["zpool", "status", "-P", "-L", *pools], timeout=timeout)
    if result.ok:
        try:
            scene.zpool_vdevs = parse_zpool_status(result.text)
        except ZfsFormatError as err:
            scene.zpool_error = str(err)
    else:
        scene.zpool_error = result.describe_failure()


def _record(decision: Decision, ciphers: Dict[str, Optional[str]]) -> Dict[str, Any]:
    found = [ciphers.get(name) for name in decision.crypt_devices]
    record: Dict[str, Any] = {
        "encrypted": decision.encrypted,
        "layer": decision.layer,
        "chain": decision.chain,
        "ciphers": None if any(c is None for c in found) else sorted(set(c for c in found if c)),
    }
    record["volatile"] = decision.volatile
    return record


def _read_procfs(ctx: Context, gaps: List[Gap]) -> Tuple[Optional[List[MountEntry]], Optional[List[SwapEntry]]]:
    """Mounts and active swaps, each None when unreadable or malformed (a gap says why): an empty
    list would claim there is nothing to encrypt."""
    swaps: Optional[List[SwapEntry]] = None
    mounts, unreadable = read_mountinfo(ctx)
    if mounts is None:
        gaps.append(Gap("mounted filesystems", unreadable))
    try:
        swaps = parse_swaps(ctx.read_text("/proc/swaps"))
    except OSError as err:
        gaps.append(Gap("active swap", describe_os_error(err, "/proc/swaps")))
    except ProcFormatError as err:
        gaps.append(Gap("active swap", str(err)))
    return mounts, swaps


def _judge_swap(scene: Scene, swap: SwapEntry, mounts: List[MountEntry]) -> Tuple[Optional[str], Decision]:
    if swap.type == "partition" or swap.path.startswith("/dev/"):
        return judge_swap_device(scene, swap.path)
    # A swap file is as encrypted as the filesystem that holds it.
    holder = mount_holding(swap.path, mounts)
    if holder is None:
        return None, Decision(None, unknown_reasons=[f"no mount holds swap file {swap.path}"])
    _, decision, _ = judge_mount(scene, holder)
    decision.chain = [f"{line} -> file {swap.path}" for line in decision.chain]
    return None, decision


def _unknown_gaps(what: str, decision: Decision) -> List[Gap]:
    return [Gap(what, reason) for reason in decision.unknown_reasons] if decision.encrypted is None else []


def collect(ctx: Context) -> Outcome:
    """Observe every data mount and swap, its device stack and encryption, and LUKS containers."""
    settings = dict(defaults(SETTINGS))
    settings.update(ctx.settings)
    gaps: List[Gap] = []
    try:
        scene = Scene(ctx.root, read_block_devices(ctx.root))
    except SysfsUnreadable as err:
        scene = Scene(ctx.root, {}, sysfs_error=describe_os_error(err, "/sys/block"))
        gaps.append(Gap("block-device stack", scene.sysfs_error or ""))
    if ctx.is_root and settings["use_dmsetup"] and any(d.kind == "dm" for d in scene.devices.values()):
        # A dm device without a uuid prefix may still be dm-crypt (made with dmsetup create).
        _load_dm_table(ctx, scene, settings)
    mounts, swaps = _read_procfs(ctx, gaps)
    groups = _selected(mounts or [], settings)
    if settings["zfs"]:
        _run_zfs(ctx, scene, groups, float(settings["command_timeout"]))

    judged_mounts = [(group, *judge_mount(scene, group[0])) for group in groups]
    judged_swaps = [(swap, *_judge_swap(scene, swap, mounts or [])) for swap in swaps or []]
    crypt_devices: List[str] = []
    for decision in [j[2] for j in judged_mounts] + [j[2] for j in judged_swaps]:
        crypt_devices.extend(d for d in decision.crypt_devices if d not in crypt_devices)
    containers, headers, container_gaps = find_containers(ctx, scene.devices, settings)
    gaps.extend(container_gaps)
    ciphers = _ciphers(ctx, scene, crypt_devices, headers, settings, gaps)

    boot_points = {p.rstrip("/") or "/" for p in settings["boot_mountpoints"]}
    observed_mounts = []
    for group, kname, decision, zfs_facts in judged_mounts:
        entry = group[0]
        record: Dict[str, Any] = {
            "mountpoint": entry.mountpoint,
            "fstype": entry.fstype,
            "source": entry.source,
            "device": kname,
            "majmin": None if entry.fstype == "zfs" else entry.majmin,
        }
        record.update(_record(decision, ciphers))
        record["boot"] = entry.mountpoint in boot_points
        if zfs_facts is not None:
            record["zfs"] = zfs_facts
            if decision.layer == "zfs-native":
                record["ciphers"] = [zfs_facts["encryption"]]
        record["also_mounted_at"] = [e.mountpoint for e in group[1:]]
        observed_mounts.append(record)
        gaps.extend(_unknown_gaps(f"encryption of {entry.mountpoint}", decision))
    observed_swaps = []
    for swap, kname, decision in judged_swaps:
        record = {"path": swap.path, "type": swap.type, "size_kib": swap.size_kib, "device": kname}
        record.update(_record(decision, ciphers))
        observed_swaps.append(record)
        gaps.extend(_unknown_gaps(f"encryption of swap {swap.path}", decision))

    everything = observed_mounts + observed_swaps
    observed: Dict[str, Any] = {
        "mounts": observed_mounts if mounts is not None else None,
        "swaps": observed_swaps if swaps is not None else None,
        "luks_containers": containers,
        "unencrypted_count": sum(
            1 for r in everything if r["encrypted"] is False and not r["volatile"] and not r.get("boot")
        ),
        "unknown_count": sum(1 for r in everything if r["encrypted"] is None),
    }
    if not everything and mounts is not None and swaps is not None:
        return Outcome.not_present(
            "no data filesystem and no swap is mounted in this mount namespace "
            "(only pseudo, memory, overlay or image filesystems)",
            **observed,
        )
    return Outcome.from_parts(observed, gaps)


def _load_dm_table(ctx: Context, scene: Scene, settings: Dict[str, Any]) -> None:
    """Run ``dmsetup table --target crypt`` once (root only); fills ``scene.crypt_targets``."""
    if scene.dm_table_error is not None or scene.crypt_targets:
        return
    result = ctx.command(["dmsetup", "table", "--target", "crypt"], timeout=float(settings["command_timeout"]))
    if not result.ok:
        scene.dm_table_error = result.describe_failure(cause="/dev/mapper/control") + (
            " (device-mapper answers through /dev/mapper/control, with CAP_SYS_ADMIN: docs/operations.md)"
            if result.error is None
            else ""
        )
        return
    try:
        scene.crypt_targets = parse_crypt_table(result.text)
    except DmTableFormatError as err:
        scene.dm_table_error = str(err)
        return
    if not scene.crypt_targets:
        scene.dm_table_error = "dmsetup table lists no crypt target"


def _ciphers(
    ctx: Context,
    scene: Scene,
    crypt_devices: List[str],
    headers: Dict[str, Any],
    settings: Dict[str, Any],
    gaps: List[Gap],
) -> Dict[str, Optional[str]]:
    """Cipher per dm-crypt device: from its LUKS header, else (root) from the dm table."""
    ciphers: Dict[str, Optional[str]] = {}
    missing: List[str] = []
    for name in crypt_devices:
        dev = scene.devices.get(name)
        header = headers.get(dev.lower[0]) if dev is not None and len(dev.lower) == 1 else None
        ciphers[name] = header.cipher if header is not None else None
        if ciphers[name] is None:
            missing.append(name)
    if not missing:
        return ciphers
    if not ctx.is_root:
        gaps.append(
            Gap(
                f"cipher of {', '.join(missing)}",
                "not root: the dm-crypt table (dmsetup table) and LUKS headers are readable only by root",
            )
        )
        return ciphers
    if not settings["use_dmsetup"]:
        gaps.append(Gap(f"cipher of {', '.join(missing)}", "no LUKS header read and use_dmsetup is off"))
        return ciphers
    _load_dm_table(ctx, scene, settings)
    for name in missing:
        dev = scene.devices.get(name)
        dm_name = dev.dm_name if dev is not None and dev.dm_name else name
        ciphers[name] = scene.crypt_targets.get(dm_name)
        if ciphers[name] is None:
            gaps.append(
                Gap(f"cipher of {name}", scene.dm_table_error or f"dmsetup table lists no crypt target named {dm_name}")
            )
    return ciphers


def summary(observed: Mapping[str, Any]) -> str:
    """``4 mounts: 2 encrypted, 2 unencrypted (1 boot); swap 1/1 encrypted; LUKS not opened: 1``."""
    mounts = observed.get("mounts") or []
    swaps = observed.get("swaps") or []

    def count(records: Sequence[Mapping[str, Any]], value: Any) -> int:
        return sum(1 for r in records if r.get("encrypted") is value)

    parts = [f"{len(mounts)} mounts: {count(mounts, True)} encrypted, {count(mounts, False)} unencrypted"]
    boot = count([m for m in mounts if m.get("boot")], False)
    if boot:
        parts[0] += f" ({boot} boot)"
    if count(mounts, None):
        parts[0] += f", {count(mounts, None)} unknown"
    if observed.get("mounts") is None:
        parts[0] = "mounts unknown"
    if observed.get("swaps") is None:
        parts.append("swap unknown")
    elif swaps:
        parts.append(f"swap {count(swaps, True)}/{len(swaps)} encrypted")
    closed = sum(1 for c in observed.get("luks_containers") or [] if not c.get("opened"))
    if closed:
        parts.append(f"LUKS not opened: {closed}")
    return "; ".join(parts)
