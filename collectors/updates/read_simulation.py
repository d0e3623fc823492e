"""The slow half: a simulated upgrade (seconds of CPU with real package lists), run at most every
``simulate_interval`` and sooner when its inputs change, its answer kept between runs.

The answer is cached in the agent's state directory (``updates-simulation.json``), or in memory
when there is none, keyed by the filesystem root and package manager.  It is run again when the
interval has passed, when the installed packages or the package lists change (their modification
times), or after a reboot (``/proc/sys/kernel/random/boot_id``, for ``needs-restarting -r``).
A failed simulation is tried again after ``RETRY_AFTER_FAILURE`` seconds.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from datetime import datetime
from typing import Any, Dict, Optional

from collectors.base import Context
from collectors.runner import CommandResult
from collectors.updates import parse_apt
from evidence.model import parse_utc, utc_iso

CACHE_FILE = "updates-simulation.json"
RETRY_AFTER_FAILURE = 900
_INPUTS = {
    "apt": ("/var/lib/dpkg/status", "/var/lib/apt/lists"),
    "dnf": ("/var/lib/rpm", "/usr/lib/sysimage/rpm", "/var/cache/dnf"),
    "yum": ("/var/lib/rpm", "/var/cache/yum"),
}
_MEMORY: Dict[str, Dict[str, Any]] = {}
_LOCK = threading.Lock()
Result = Dict[str, Any]


def inputs_stamp(ctx: Context, manager: str) -> str:
    """Changes when the installed packages, the package lists or the boot change."""
    parts = []
    for path in _INPUTS[manager]:
        try:
            st = ctx.path(path).stat()
            parts.append(f"{path}:{st.st_mtime_ns}:{st.st_size}")
        except OSError:
            parts.append(f"{path}:-")
    try:
        parts.append("boot:" + ctx.read_text("/proc/sys/kernel/random/boot_id", 64).strip())
    except OSError:
        parts.append("boot:-")
    return "|".join(parts)


def simulated(ctx: Context, manager: str) -> Result:
    """The (possibly cached) simulation: ``ok``, ``reason``, ``ran_at``, ``pending``, ..."""
    key = f"{ctx.root}|{manager}|refresh={bool(ctx.settings.get('refresh'))}"
    stamp = inputs_stamp(ctx, manager)
    now = ctx.now()
    with _LOCK:
        entry = _load(ctx).get(key) or _MEMORY.get(key)
    if entry and _fresh(entry, stamp, now, ctx):
        return dict(entry["result"], cached=True)
    result = _run(ctx, manager)
    result["ran_at"] = utc_iso(now)
    entry = {"stamp": inputs_stamp(ctx, manager), "result": result}
    with _LOCK:
        _MEMORY[key] = entry
        _save(ctx, key, entry)
    return dict(result, cached=False)


def _fresh(entry: Dict[str, Any], stamp: str, now: datetime, ctx: Context) -> bool:
    try:
        age = (now - parse_utc(str(entry["result"]["ran_at"]))).total_seconds()
    except (KeyError, TypeError, ValueError):
        return False
    limit = int(ctx.settings.get("simulate_interval", 21600))
    if not entry["result"].get("ok"):
        limit = min(limit, RETRY_AFTER_FAILURE)
    return entry.get("stamp") == stamp and 0 <= age < limit


def _cache_path(ctx: Context) -> Optional[str]:
    return os.path.join(str(ctx.state_dir), CACHE_FILE) if ctx.state_dir is not None else None


def _load(ctx: Context) -> Dict[str, Any]:
    path = _cache_path(ctx)
    if path is None:
        return {}
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read(4 * 1024 * 1024))
    except (OSError, ValueError):
        return {}  # absent or damaged: simulate again and write a good one
    return data if isinstance(data, dict) else {}


def _save(ctx: Context, key: str, entry: Dict[str, Any]) -> None:
    """Write the cache atomically; a state directory that cannot be written keeps it in memory."""
    path = _cache_path(ctx)
    if path is None:
        return
    data = _load(ctx)
    data[key] = entry
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{CACHE_FILE}.", dir=os.path.dirname(path))
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
        os.replace(tmp, path)
    except OSError:
        return


def _timeout(ctx: Context) -> float:
    return float(ctx.settings.get("simulate_timeout", 120.0))


def _failed(result: CommandResult, what: str) -> Result:
    return {"ok": False, "reason": f"{what} failed: {result.describe_failure()}", "pending": None}


def _run(ctx: Context, manager: str) -> Result:
    return _apt(ctx) if manager == "apt" else _dnf(ctx, manager)


def _apt(ctx: Context) -> Result:
    # Debug::NoLocking: never wait for, nor hold up, a real apt run; the simulation changes nothing.
    base = ["apt-get", "-q", "-o", "Debug::NoLocking=1", "-o", "APT::Get::Show-User-Simulation-Note=false"]
    if str(ctx.root) != "/":
        base += ["-o", f"Dir={ctx.root}"]
    refreshed: Optional[str] = None
    if ctx.settings.get("refresh"):
        update = ctx.command([*base, "update"], timeout=_timeout(ctx))
        refreshed = utc_iso(ctx.now()) if update.ok else None
        if not update.ok:
            return _failed(update, "apt-get update (refresh: true)")
    result = ctx.command([*base, "-s", "dist-upgrade"], timeout=_timeout(ctx))
    if not result.ok:
        return _failed(result, "apt-get -s dist-upgrade")
    try:
        packages = parse_apt.parse_simulation(result.text)
    except parse_apt.AptFormatError as err:
        return {"ok": False, "reason": f"apt-get -s dist-upgrade: unreadable answer: {err}", "pending": None}
    return {
        "ok": True,
        "reason": None,
        "command": "apt-get -s dist-upgrade",
        "refreshed_at": refreshed,
        "pending": packages,
        "security_known": True,
        "held_back": parse_apt.held_back(result.text),
    }


def _dnf(ctx: Context, manager: str) -> Result:
    from collectors.updates import parse_dnf  # only RPM machines need it

    # -C (--cacheonly): never fetch metadata, unless refresh is configured (then makecache first).
    root = [f"--installroot={ctx.root}"] if str(ctx.root) != "/" else []
    base = [manager, "-q", "-C", *root]
    refreshed: Optional[str] = None
    if ctx.settings.get("refresh"):
        update = ctx.command([manager, "-q", *root, "makecache"], timeout=_timeout(ctx))
        if not update.ok:
            return _failed(update, f"{manager} makecache (refresh: true)")
        refreshed = utc_iso(ctx.now())
    check = ctx.command([*base, "check-update"], timeout=_timeout(ctx))
    if check.error is not None or check.returncode not in (0, 100):
        return _failed(check, f"{manager} check-update")
    try:
        pending = parse_dnf.parse_check_update(check.text)
    except parse_dnf.DnfFormatError as err:
        return {"ok": False, "reason": f"{manager} check-update: unreadable answer: {err}", "pending": None}
    result: Result = {
        "ok": True,
        "reason": None,
        "command": f"{manager} check-update",
        "refreshed_at": refreshed,
        "pending": pending,
        "security_known": False,
        "held_back": [],
    }
    info = ctx.command([*base, "updateinfo", "list", "--security"], timeout=_timeout(ctx))
    try:
        security = parse_dnf.parse_updateinfo(info.text) if info.ok else None
    except parse_dnf.DnfFormatError as err:
        security, result["security_reason"] = None, f"{manager} updateinfo: unreadable answer: {err}"
    if info.ok and security is not None:
        result["security_known"] = True
        for package in pending:
            package["security"] = package["name"] in security
    elif not info.ok:
        result["security_reason"] = f"{manager} updateinfo list --security failed: {info.describe_failure()}"
    # dnf's needs-restarting plugin (dnf-plugins-core); on yum hosts the yum-utils command.
    argv = [*base, "needs-restarting", "-r"] if manager == "dnf" else ["needs-restarting", "-r"]
    restart = ctx.command(argv, timeout=_timeout(ctx))
    # needs-restarting -r: exit 1 means a reboot is needed, 0 that it is not; anything else is unknown.
    answered = restart.error is None and restart.returncode in (0, 1)
    result["reboot_required"] = (restart.returncode == 1) if answered else None
    if result["reboot_required"] is None:
        result["reboot_reason"] = f"needs-restarting -r: {restart.describe_failure()}"
    return result
