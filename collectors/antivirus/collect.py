"""The antivirus collector: which AV/EDR products are installed and running, with
ClamAV and Defender details.  Facts only; rules judge freshness and coverage."""

from __future__ import annotations

from typing import AbstractSet, Any, Callable, Dict, List, Mapping, Optional, Sequence

from collectors.antivirus import read_system
from collectors.antivirus.products import PRODUCTS, ProcessInfo, looked_for, processes_of
from collectors.antivirus.read_clamav import collect_clamav
from collectors.antivirus.read_defender import collect_defender
from collectors.base import Context
from collectors.processes import psutil_processes
from evidence.model import Gap, Outcome

ProcessLister = Callable[[Optional[AbstractSet[str]]], List[ProcessInfo]]
# Command lines are read only where needed: freshclam's (is it a daemon?) and, when a
# product's install directory exists, every process (its program may lie below it).
CMDLINE_NAMES = frozenset({"freshclam"})


def collect(ctx: Context) -> Outcome:
    return collect_with(ctx, lambda cmdline_for: read_system.list_processes(cmdline_for, psutil_processes(ctx)))


def collect_with(ctx: Context, list_processes: ProcessLister) -> Outcome:
    """``collect`` with the process pass injectable, so tests can replay a captured process list."""
    settings = ctx.settings
    gaps: List[Gap] = []
    installed_paths = {p.key: read_system.existing_paths(ctx, p.paths) for p in PRODUCTS}
    need_all = any(installed_paths[p.key] and p.program_dirs for p in PRODUCTS)
    try:
        processes: Sequence[ProcessInfo] = list_processes(None if need_all else CMDLINE_NAMES)
    except Exception as err:  # noqa: BLE001  psutil.Error or OSError reading /proc: record, carry on
        processes = []
        gaps.append(Gap("processes", f"cannot list processes: {err}"))
    hidden = read_system.hidden_processes_reason(ctx)
    if hidden:
        gaps.append(Gap("processes", hidden))
    running_known = not hidden and not any(g.what == "processes" for g in gaps)

    products: List[Dict[str, Any]] = []
    for product in PRODUCTS:
        units = read_system.existing(ctx, settings["unit_dirs"], product.units)
        paths = installed_paths[product.key]
        procs = processes_of(product, processes)
        if not (units or paths or procs):
            continue
        entry: Dict[str, Any] = {
            "product": product.key,
            "name": product.name,
            "installed": bool(units or paths),
            "running": True if procs else (False if running_known else None),
            "units": list(units),
            "paths": list(paths),
            "processes": sorted({p.name for p in procs}),
        }
        products.append(entry)

    observed: Dict[str, Any] = {"products": products}
    clamav_entry = _entry(products, "clamav")
    if clamav_entry is not None or ctx.path(str(settings["clamd_conf"])).exists():
        facts = collect_clamav(ctx, settings, processes, running_known)
        observed["clamav"] = facts.observed
        gaps.extend(facts.gaps)
        if clamav_entry is None:
            clamav_entry = _found_by_its_tool("clamav", "ClamAV", running_known, [])
            products.insert(0, clamav_entry)
        clamav_entry.update(
            running=facts.scanner_running,
            version=facts.engine_version,
            signature_time=facts.newest_signature_time,
            real_time_protection=facts.real_time_protection,
        )
    defender = collect_defender(ctx, settings)
    if defender is not None:
        observed["mdatp"] = defender.observed
        gaps.extend(defender.gaps)
        mdatp_entry = _entry(products, "mdatp")
        if mdatp_entry is None:
            mdatp_entry = _found_by_its_tool(
                "mdatp", "Microsoft Defender for Endpoint", running_known, [str(settings["mdatp_command"])]
            )
            products.append(mdatp_entry)
        mdatp_entry.update(
            version=defender.version,
            signature_time=defender.signature_time,
            real_time_protection=defender.real_time_protection,
        )

    if not products:
        reason = "no antivirus found: looked for " + looked_for()
        if not running_known:
            # Without a full process list an unlisted agent may still run: say so rather than "absent".
            return Outcome.from_parts(observed, gaps)
        return Outcome.not_present(reason, products=[])
    return Outcome.from_parts(observed, gaps)


def _entry(products: List[Dict[str, Any]], key: str) -> Optional[Dict[str, Any]]:
    return next((p for p in products if p["product"] == key), None)


def _found_by_its_tool(product: str, name: str, running_known: bool, paths: List[str]) -> Dict[str, Any]:
    """A product the package, unit and process scan missed but its own files or tool revealed:
    installed; not running as far as a full process list shows (unknown without one)."""
    return {
        "product": product,
        "name": name,
        "installed": True,
        "running": False if running_known else None,
        "units": [],
        "paths": paths,
        "processes": [],
    }


def summary(observed: Mapping[str, Any]) -> str:
    """E.g. ``ClamAV running, signatures 2026-11-25T09:24:01Z, on-access off; mdatp running, real-time on``."""
    parts: List[str] = []
    for product in observed.get("products", []):
        running = product.get("running")
        state = "running" if running else ("not running" if running is False else "running: unknown")
        words = [f"{product.get('name') or product.get('product')} {state}"]
        if product.get("signature_time"):
            words.append(f"signatures {product['signature_time']}")
        rtp = product.get("real_time_protection")
        if rtp is not None:
            words.append(f"real-time {'on' if rtp else 'off'}")
        parts.append(", ".join(words))
    return "; ".join(parts) or "no antivirus"
