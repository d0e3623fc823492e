"""Patch state of this node (all I/O here): pending and security updates from the cached
simulation, the age of the package lists, whether a reboot is required, and the running kernel
against the newest installed one."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Tuple

from collectors.base import Context, Observed, describe_os_error
from collectors.updates import parse_kernel
from collectors.updates.read_simulation import simulated
from evidence.model import Gap, Outcome, utc_iso

REBOOT_MARKERS = ("/run/reboot-required", "/var/run/reboot-required")
APT_STAMP = "/var/lib/apt/periodic/update-success-stamp"


def detect(ctx: Context) -> Tuple[Optional[str], str]:
    """The package manager to ask, or None and why there is none."""
    chosen = str(ctx.settings.get("manager", "auto"))
    if chosen != "auto":
        return chosen, ""
    if ctx.path("/var/lib/dpkg/status").exists():
        return "apt", ""
    if ctx.path("/var/lib/rpm").is_dir() or ctx.path("/usr/lib/sysimage/rpm").is_dir():
        return ("dnf" if ctx.path("/etc/dnf").is_dir() else "yum"), ""
    return None, "no package database of apt (/var/lib/dpkg/status) or dnf/yum (/var/lib/rpm) on this node"


def _mtime(ctx: Context, absolute: str) -> Optional[datetime]:
    try:
        return datetime.fromtimestamp(ctx.path(absolute).stat().st_mtime, timezone.utc)
    except (OSError, OverflowError, ValueError):
        return None


def lists_age(ctx: Context, manager: str) -> Tuple[Optional[str], str]:
    """When the package lists were last refreshed, and from which file that is known."""
    if manager == "apt":
        stamp = _mtime(ctx, APT_STAMP)
        if stamp is not None:
            return utc_iso(stamp), APT_STAMP
        directory = "/var/lib/apt/lists"
        names: Tuple[str, ...] = ("Release", "InRelease")
    else:
        directory = "/var/cache/dnf" if manager == "dnf" else "/var/cache/yum"
        stamp = _mtime(ctx, f"{directory}/last_makecache")
        if stamp is not None:
            return utc_iso(stamp), f"{directory}/last_makecache"
        names = ("repomd.xml",)
    newest: Optional[datetime] = None
    try:
        for dirpath, _dirs, files in os.walk(ctx.path(directory)):
            for name in files:
                if name.endswith(names):
                    moment = _mtime(ctx, os.path.join(dirpath, name)[len(str(ctx.root)) :] or "/")
                    if moment and (newest is None or moment > newest):
                        newest = moment
    except OSError:
        newest = None
    if newest is None:
        return None, f"no package lists in {directory}"
    return utc_iso(newest), f"newest {'/'.join(names)} in {directory}"


def reboot_marker(ctx: Context) -> Tuple[Optional[bool], List[str], Optional[str]]:
    """Debian/Ubuntu's /run/reboot-required (written by update-notifier and unattended-upgrades)."""
    for marker in REBOOT_MARKERS:
        if ctx.path(marker).exists():
            try:
                packages = parse_kernel.parse_reboot_packages(ctx.read_text(marker + ".pkgs"))
            except OSError:
                packages = []
            return True, packages, marker
    return False, [], None


def kernels(ctx: Context) -> Tuple[Optional[str], List[str], List[Gap]]:
    """The running kernel release and the installed ones (``/boot/vmlinuz-*``, else ``/lib/modules``)."""
    gaps: List[Gap] = []
    try:
        running: Optional[str] = ctx.read_text("/proc/sys/kernel/osrelease", 256).strip() or None
    except OSError as err:
        running = None
        gaps.append(Gap("running kernel", describe_os_error(err, "/proc/sys/kernel/osrelease")))
    installed: List[str] = []
    try:
        installed = parse_kernel.kernel_files(os.listdir(ctx.path("/boot")))
    except OSError:
        installed = []
    if not installed:
        for modules in ("/lib/modules", "/usr/lib/modules"):
            try:
                installed = sorted(
                    (n for n in os.listdir(ctx.path(modules)) if ctx.path(f"{modules}/{n}/modules.dep").exists()),
                    key=parse_kernel.release_key,
                )
            except OSError:
                continue
            if installed:
                break
    if not installed:
        gaps.append(Gap("installed kernels", "no kernel in /boot or /lib/modules (a container runs its host's kernel)"))
    return running, installed, gaps


def collect(ctx: Context) -> Outcome:
    manager, why = detect(ctx)
    if manager is None:
        return Outcome.not_present(why)
    gaps: List[Gap] = []
    sim = simulated(ctx, manager)
    pending = sim.get("pending")
    limit = int(ctx.settings.get("max_listed", 200))
    observed: Observed = {"manager": manager}
    if sim.get("ok") and isinstance(pending, list):
        security_known = bool(sim.get("security_known"))
        security = [p for p in pending if p.get("security")]
        observed.update(
            {
                "pending_count": len(pending),
                "security_count": len(security) if security_known else None,
                "pending": [_short(p) for p in sorted(pending, key=lambda p: (not p.get("security"), p["name"]))][
                    :limit
                ],
                "held_back": sim.get("held_back") or [],
            }
        )
        if not security_known:
            gaps.append(Gap("security updates", str(sim.get("security_reason") or "not known")))
    else:
        observed.update({"pending_count": None, "security_count": None, "pending": None, "held_back": None})
        gaps.append(Gap("pending updates", str(sim.get("reason"))))
    observed["simulated_at"] = sim.get("ran_at")
    observed["simulation_cached"] = bool(sim.get("cached"))
    observed["refreshed_at"] = sim.get("refreshed_at")
    observed["lists_updated_at"], observed["lists_source"] = lists_age(ctx, manager)
    if observed["lists_updated_at"] is None:
        gaps.append(Gap("age of the package lists", observed["lists_source"]))
    _reboot(ctx, manager, sim, observed, gaps)
    running, installed, kernel_gaps = kernels(ctx)
    gaps.extend(kernel_gaps)
    newest = parse_kernel.newest(installed)
    observed.update(
        {
            "running_kernel": running,
            "installed_kernels": installed,
            "newest_kernel": newest,
            "running_kernel_is_newest": (running == newest) if running and newest else None,
        }
    )
    return Outcome.from_parts(observed, gaps)


def _reboot(ctx: Context, manager: str, sim: Mapping[str, Any], observed: Observed, gaps: List[Gap]) -> None:
    if manager == "apt":
        required, packages, marker = reboot_marker(ctx)
        observed["reboot_required"] = required
        observed["reboot_required_packages"] = packages
        observed["reboot_source"] = marker or "no /run/reboot-required"
        return
    observed["reboot_required"] = sim.get("reboot_required")
    observed["reboot_required_packages"] = []
    observed["reboot_source"] = "needs-restarting -r"
    if sim.get("ok") and sim.get("reboot_required") is None:
        gaps.append(Gap("reboot required", str(sim.get("reboot_reason") or "not known")))


def _short(package: Mapping[str, Any]) -> Dict[str, Any]:
    return {
        "name": package.get("name"),
        "current": package.get("current"),
        "candidate": package.get("candidate"),
        "security": package.get("security"),
        "origin": ", ".join(package.get("releases") or []) or package.get("repository"),
    }


def summary(observed: Mapping[str, Any]) -> str:
    """E.g. ``apt: 12 pending (3 security), lists 2026-12-06T06:10:00Z, reboot required``."""
    count, security = observed.get("pending_count"), observed.get("security_count")
    pending = (
        "pending unknown" if count is None else f"{count} pending ({'?' if security is None else security} security)"
    )
    parts = [f"{observed.get('manager')}: {pending}", f"lists {observed.get('lists_updated_at') or 'never'}"]
    if observed.get("reboot_required"):
        parts.append("REBOOT required")
    if observed.get("running_kernel_is_newest") is False:
        parts.append(f"running kernel {observed.get('running_kernel')} < {observed.get('newest_kernel')}")
    return ", ".join(parts)
