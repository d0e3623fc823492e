"""The power collector's I/O and assembly: servers, sysfs, shutdown clients -> Outcome."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

from collectors.base import Context, describe_os_error
from collectors.power import parse_apcupsd, parse_power_supply, parse_shutdown_config, read_servers
from collectors.power.model import PowerSupply, ServerResult, Ups
from collectors.processes import psutil_processes
from evidence.model import Gap, Outcome

SYSFS_DIR = "/sys/class/power_supply"
NUT_RUNNING_MODES = ("standalone", "netserver")


def _is_loopback(host: str) -> bool:
    # ipaddress would cost a few ms to import for this one test.
    return host in ("localhost", "::1") or host.startswith("127.")


def _read_optional(ctx: Context, path: str, gaps: List[Gap]) -> Optional[str]:
    """File text, or None when it does not exist; other failures become a gap."""
    try:
        return ctx.read_text(path)
    except FileNotFoundError:
        return None
    except OSError as err:
        gaps.append(Gap(path, describe_os_error(err, path)))
        return None


def _running(ctx: Context, names: Tuple[str, ...]) -> Dict[str, bool]:
    """Whether a process of each name runs (psutil's process list, shared with the round)."""
    running = {name for _, name in psutil_processes(ctx)}
    return {name: name in running for name in names}


def _nut_client(ctx: Context, gaps: List[Gap]) -> Tuple[Dict[str, Any], List[parse_shutdown_config.Monitor]]:
    conf_dir = str(ctx.settings.get("nut_config_dir", "/etc/nut")).rstrip("/")
    nut_conf = _read_optional(ctx, f"{conf_dir}/nut.conf", gaps)
    upsmon_text = _read_optional(ctx, f"{conf_dir}/upsmon.conf", gaps)
    mode = parse_shutdown_config.parse_shell_assignments(nut_conf).get("MODE") if nut_conf else None
    upsmon = parse_shutdown_config.parse_upsmon_conf(upsmon_text) if upsmon_text else None
    monitors = upsmon.monitors if upsmon else []
    info: Dict[str, Any] = {
        "installed": nut_conf is not None or upsmon_text is not None,
        "mode": mode,
        "monitors": [m.to_dict() for m in monitors],
        "shutdown_cmd": upsmon.shutdown_cmd if upsmon else None,
        "min_supplies": upsmon.min_supplies if upsmon else None,
        "configured": bool(monitors) and mode not in (None, "none"),
        "running": None,
    }
    return info, monitors


def _apcupsd_client(ctx: Context, gaps: List[Gap]) -> Dict[str, Any]:
    conf_path = str(ctx.settings.get("apcupsd_config", "/etc/apcupsd/apcupsd.conf"))
    default_path = str(ctx.settings.get("apcupsd_default", "/etc/default/apcupsd"))
    conf_text = _read_optional(ctx, conf_path, gaps)
    default_text = _read_optional(ctx, default_path, gaps)
    conf = parse_shutdown_config.parse_apcupsd_conf(conf_text) if conf_text else {}
    isconfigured: Optional[bool] = None
    if default_text is not None:
        flag = parse_shutdown_config.parse_shell_assignments(default_text).get("ISCONFIGURED")
        isconfigured = None if flag is None else flag.lower() == "yes"

    def number(key: str) -> Optional[float]:
        try:
            return float(conf[key]) if key in conf else None
        except ValueError:
            return None

    return {
        "installed": conf_text is not None,
        "isconfigured": isconfigured,
        "upstype": conf.get("UPSTYPE"),
        "upscable": conf.get("UPSCABLE"),
        "battery_level_pct": number("BATTERYLEVEL"),
        "minutes": number("MINUTES"),
        "timeout_s": number("TIMEOUT"),
        "configured": conf_text is not None and isconfigured is not False,
        "running": None,
    }


def _power_supplies(ctx: Context, gaps: List[Gap]) -> List[PowerSupply]:
    base = ctx.path(SYSFS_DIR)
    try:
        entries = sorted(p.name for p in base.iterdir())
    except FileNotFoundError:
        return []
    except OSError as err:
        gaps.append(Gap("power supplies", describe_os_error(err, SYSFS_DIR)))
        return []
    supplies = []
    for name in entries:
        try:
            uevent = ctx.read_text(f"{SYSFS_DIR}/{name}/uevent")
        except OSError as err:
            gaps.append(Gap(f"power supply {name}", describe_os_error(err, f"{SYSFS_DIR}/{name}/uevent")))
            continue
        type_file = None
        if "POWER_SUPPLY_TYPE=" not in uevent:
            try:
                type_file = ctx.read_text(f"{SYSFS_DIR}/{name}/type")
            except OSError:
                type_file = None
        supplies.append(parse_power_supply.supply_from_uevent(name, uevent, type_file))
    return supplies


def _password(ctx: Context, path: Optional[str], gaps: List[Gap], what: str) -> Optional[str]:
    if not path:
        return None
    try:
        lines = ctx.read_text(path, limit=4096).splitlines()
    except OSError as err:
        gaps.append(Gap(f"{what} login", describe_os_error(err, f"password file {path}")))
        return None
    return lines[0].strip() if lines else ""


def _server_list(ctx: Context, monitors: List[parse_shutdown_config.Monitor]) -> List[Dict[str, Any]]:
    servers: List[Dict[str, Any]] = [dict(s) for s in ctx.settings.get("nut_servers", [])]
    if ctx.settings.get("nut_follow_upsmon", True):
        for monitor in monitors:
            servers.append({"host": monitor.host, "port": monitor.port})
    unique: Dict[Tuple[str, int], Dict[str, Any]] = {}
    for server in servers:
        host = "127.0.0.1" if server["host"] == "localhost" else str(server["host"])
        unique.setdefault((host, int(server.get("port", 3493))), {**server, "host": host})
    return list(unique.values())


def _ups_gaps(ups: Ups) -> List[Gap]:
    if ups.error:
        return [Gap(ups.label, ups.error)]
    missing = []
    if not ups.flags:
        missing.append("status" if ups.status_raw != "WAIT" else "status (driver has not sent data yet: WAIT)")
    if ups.battery_charge_pct is None:
        missing.append("battery charge")
    if ups.runtime_s is None:
        missing.append("runtime")
    if ups.self_test_result_raw is None:
        missing.append("self-test result")
    gaps = [Gap(f"{ups.label}: {item}", f"not reported by {ups.source} for this UPS") for item in missing]
    if ups.self_test_result is None and ups.self_test_result_raw is not None:
        why = parse_apcupsd.SELFTEST_NO_RESULT.get(ups.self_test_result_raw, "no result")
        gaps.append(Gap(f"{ups.label}: self-test result", f"{ups.source} reports {ups.self_test_result_raw}: {why}"))
    if ups.status_unmapped:
        gaps.append(Gap(f"{ups.label}: status", f"apcupsd reports {' '.join(ups.status_unmapped)}"))
    return gaps


def collect(ctx: Context) -> Outcome:
    """Every UPS of the configured NUT and apcupsd servers, host batteries, shutdown clients."""
    gaps: List[Gap] = []
    timeout = float(ctx.settings.get("server_timeout", 2.0))
    nut_info, monitors = _nut_client(ctx, gaps)
    apc_info = _apcupsd_client(ctx, gaps)

    results: List[ServerResult] = []
    for server in _server_list(ctx, monitors):
        password = _password(ctx, server.get("password_file"), gaps, f"nut {server['host']}")
        username = server.get("username") if password is not None else None
        results.append(read_servers.query_nut(server["host"], int(server["port"]), timeout, username, password))
    for server in ctx.settings.get("apcupsd_servers", []):
        results.append(read_servers.query_apcupsd(str(server["host"]), int(server.get("port", 3551)), timeout))

    expected = {"nut": nut_info["mode"] in NUT_RUNNING_MODES, "apcupsd": bool(apc_info["configured"])}
    quiet: List[str] = []
    ups_list: List[Ups] = []
    for result in results:
        ups_list.extend(result.ups)
        if result.error is None:
            continue
        where = f"{result.source} server {result.address}"
        if result.refused and _is_loopback(result.host) and not expected[result.source]:
            quiet.append(f"{where}: {result.error}")  # nothing installed to answer there
        else:
            gaps.append(Gap(where, result.error))
    for ups in ups_list:
        gaps.extend(_ups_gaps(ups))
    gaps.extend(Gap(f"nut server {r.address} login", str(r.login)) for r in results if r.login not in (None, "ok"))

    supplies = _power_supplies(ctx, gaps) if ctx.settings.get("power_supply", True) else []
    batteries = [s for s in supplies if parse_power_supply.is_host_power(s)]

    # Only a configured client is worth a process scan (a few ms with psutil).
    wanted = tuple(n for n, info in (("upsmon", nut_info), ("apcupsd", apc_info)) if info["configured"])
    if wanted:
        running = _running(ctx, wanted)
        if "upsmon" in running:
            nut_info["running"] = running["upsmon"]
        if "apcupsd" in running:
            apc_info["running"] = running["apcupsd"]

    observed: Dict[str, Any] = {
        "ups": [u.to_dict() for u in ups_list],
        "ups_count": len(ups_list),
        "all_on_line": all(u.on_line is True for u in ups_list) if ups_list else None,
        "servers": [r.to_dict() for r in results],
        "power_supplies": [s.to_dict() for s in supplies],
        "host_batteries": [s.name for s in batteries],
        "shutdown_client": {"upsmon": nut_info, "apcupsd": apc_info},
        "shutdown_client_configured": bool(nut_info["configured"] or apc_info["configured"]),
    }
    present = ups_list or batteries or nut_info["configured"] or apc_info["configured"]
    if not present and not gaps:
        reason = "; ".join(
            [
                "no UPS: " + ("; ".join(quiet) if quiet else "no UPS server configured"),
                "no NUT upsmon or apcupsd shutdown client configured",
                f"no battery or UPS in {SYSFS_DIR}",
            ]
        )
        return Outcome.not_present(reason, **observed)
    return Outcome.from_parts(observed, gaps)


def summary(observed: Mapping[str, Any]) -> str:
    """``2 UPS: ups1 OL 100% 1800s, ...; shutdown client: upsmon`` style line."""
    parts = []
    for ups in observed.get("ups", []):
        charge = ups.get("battery_charge_pct")
        runtime = ups.get("runtime_s")
        parts.append(
            f"{ups.get('name')} {' '.join(ups.get('flags') or []) or '?'}"
            f" {'?' if charge is None else f'{charge:g}%'} {'?' if runtime is None else f'{runtime}s'}"
        )
    batteries = observed.get("host_batteries") or []
    clients = [n for n, c in (observed.get("shutdown_client") or {}).items() if c.get("configured")]
    line = f"{len(parts)} UPS" + (": " + ", ".join(parts) if parts else "")
    if batteries:
        line += f"; battery {', '.join(batteries)}"
    return line + f"; shutdown client: {', '.join(clients) or 'none'}"
