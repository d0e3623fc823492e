"""ClamAV on this node: clamd's answer on its socket, the signature databases' age,
the freshclam updater and on-access scanning.  Thin I/O over the pure parsers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

from collectors.antivirus import parse_clamd, read_clamd
from collectors.antivirus.parse_clamconf import (
    DEFAULT_DATABASE_DIR,
    ClamdConfig,
    FreshclamConfig,
    parse_clamd_conf,
    parse_freshclam_conf,
)
from collectors.antivirus.parse_cvd import HEADER_SIZE, parse_cvd_header
from collectors.antivirus.products import ProcessInfo
from collectors.base import Context, describe_os_error
from evidence.model import Gap, utc_iso

DATABASES = ("main", "daily", "bytecode")
# Debian's units (clamav-freshclam.service runs "freshclam -d --foreground=true";
# clamav-freshclam-once.timer runs a one-shot update instead).
FRESHCLAM_SERVICE_LINK = "/etc/systemd/system/multi-user.target.wants/clamav-freshclam.service"
FRESHCLAM_TIMER_LINK = "/etc/systemd/system/timers.target.wants/clamav-freshclam-once.timer"
CLAMD_PROGRAM = "/usr/sbin/clamd"


@dataclass
class ClamavFacts:
    """The ``clamav`` section of the evidence plus what the product line needs."""

    observed: Dict[str, Any] = field(default_factory=dict)
    gaps: List[Gap] = field(default_factory=list)
    engine_version: Optional[str] = None
    newest_signature_time: Optional[str] = None
    real_time_protection: Optional[bool] = None
    scanner_running: Optional[bool] = None
    """clamd answers PING.  Only clamd scans: clamonacc hands it the files, freshclam updates its
    databases (clamonacc(8), freshclam(1)), so neither counts alone, nor a clamd that does not answer."""


def _read_conf(ctx: Context, path: str, what: str, facts: ClamavFacts) -> Optional[str]:
    """The file's text; None when absent (a fact) or unreadable (a gap)."""
    try:
        return ctx.read_text(path)
    except FileNotFoundError:
        return None
    except OSError as err:
        facts.gaps.append(Gap(what, describe_os_error(err, path)))
        return None


def _address(settings: Mapping[str, Any], conf: Optional[ClamdConfig]) -> Optional[read_clamd.ClamdAddress]:
    """Settings win; else clamd.conf's LocalSocket, else its TCPSocket (clamd.conf(5))."""
    if settings["clamd_socket"]:
        return read_clamd.ClamdAddress(path=str(settings["clamd_socket"]))
    if settings["clamd_tcp"]:
        host, _, port = str(settings["clamd_tcp"]).rpartition(":")
        if not port.isdigit():
            raise ValueError(f"setting clamd_tcp is not host:port: {settings['clamd_tcp']!r}")
        return read_clamd.ClamdAddress(host=host.strip("[]") or "127.0.0.1", port=int(port))
    if conf is None:
        return None
    if conf.local_socket:
        return read_clamd.ClamdAddress(path=conf.local_socket)
    if conf.tcp_socket is not None:
        # TCPAddr unset (or a wildcard) means clamd listens on every address: ask on loopback.
        wildcards = ("0.0.0.0", "::", "*")  # noqa: S104 - compared against, never bound
        host = next((a for a in conf.tcp_addrs if a not in wildcards), "127.0.0.1")
        return read_clamd.ClamdAddress(host=host, port=conf.tcp_socket)
    return None


def _ask_clamd(ctx: Context, address: read_clamd.ClamdAddress, timeout: float, facts: ClamavFacts) -> Dict[str, Any]:
    """PING, then VERSION.  Refused/missing socket: responding false with the reason."""
    result: Dict[str, Any] = {"address": address.describe(), "responding": None}
    socket_path = str(ctx.path(address.path)) if address.path is not None else None
    try:
        pong = read_clamd.query(address, "PING", timeout, socket_path)
    except read_clamd.ClamdError as err:
        if err.unknown:
            facts.gaps.append(Gap("clamav.clamd", err.reason))
        else:
            result.update(responding=False, reason=err.reason)
        return result
    if not parse_clamd.parse_pong(pong):
        result.update(responding=False, reason=f"unexpected answer to PING: {pong[:60]!r}")
        return result
    result["responding"] = True
    try:
        version = parse_clamd.parse_version(read_clamd.query(address, "VERSION", timeout, socket_path))
    except (read_clamd.ClamdError, ValueError) as err:
        facts.gaps.append(Gap("clamav.clamd.engine_version", str(err)))
        result["engine_version"] = None
        return result
    facts.engine_version = version.engine
    result.update(
        engine_version=version.engine,
        database_version=version.database_version,
        database_date=version.database_date,
        database_time=utc_iso(version.database_time) if version.database_time else None,
    )
    return result


def _databases(ctx: Context, directory: str, facts: ClamavFacts) -> List[Dict[str, Any]]:
    """Headers of main/daily/bytecode; of a .cld and .cvd pair, the higher version counts."""
    found: List[Dict[str, Any]] = []
    for name in DATABASES:
        best: Optional[Dict[str, Any]] = None
        for suffix in (".cld", ".cvd"):
            path = f"{directory.rstrip('/')}/{name}{suffix}"
            try:
                with open(ctx.path(path), "rb") as handle:
                    header = parse_cvd_header(handle.read(HEADER_SIZE))
            except FileNotFoundError:
                continue
            except OSError as err:
                facts.gaps.append(Gap(f"clamav.databases.{name}", describe_os_error(err, path)))
                continue
            except ValueError as err:
                facts.gaps.append(Gap(f"clamav.databases.{name}", f"{path}: {err}"))
                continue
            entry = {
                "name": name,
                "file": path,
                "version": header.version,
                "build_time": utc_iso(header.build_time),
                "signatures": header.signatures,
                "functionality_level": header.functionality_level,
                "builder": header.builder,
            }
            if best is None or header.version > best["version"]:
                best = entry
        if best is not None:
            found.append(best)
    return found


def _freshclam(ctx: Context, path: str, processes: Sequence[ProcessInfo], facts: ClamavFacts) -> Dict[str, Any]:
    text = _read_conf(ctx, path, "clamav.freshclam", facts)
    result: Dict[str, Any] = {"conf": path, "conf_present": ctx.path(path).exists()}
    conf: Optional[FreshclamConfig] = None
    if text is not None:
        try:
            conf = parse_freshclam_conf(text)
        except ValueError as err:
            facts.gaps.append(Gap("clamav.freshclam", f"{path}: {err}"))
    if conf is not None:
        result.update(
            example=conf.example,
            checks=conf.checks,
            database_mirrors=list(conf.database_mirrors),
            private_mirrors=list(conf.private_mirrors),
            configured=not conf.example and conf.checks > 0,
        )
    elif result["conf_present"]:
        result["configured"] = None
    else:
        result["configured"] = False
    daemons = [p for p in processes if p.name == "freshclam"]
    if any(not p.cmdline for p in daemons):
        result["daemon_running"] = None
        facts.gaps.append(
            Gap("clamav.freshclam.daemon_running", "a freshclam process exists but its command line is unreadable")
        )
    else:
        # freshclam(1): -d/--daemon runs it as an update daemon; without it, one update and exit.
        result["daemon_running"] = any(a in ("-d", "--daemon") for p in daemons for a in p.cmdline[1:])
    result["service_enabled"] = ctx.path(FRESHCLAM_SERVICE_LINK).exists()
    result["timer_enabled"] = ctx.path(FRESHCLAM_TIMER_LINK).exists()
    return result


def _real_time(configured: bool, clamonacc_running: bool, responding: Optional[bool]) -> Optional[bool]:
    """On-access scanning works when it is configured, clamonacc runs and clamd answers."""
    if not configured or not clamonacc_running or responding is False:
        return False
    return responding


def collect_clamav(
    ctx: Context, settings: Mapping[str, Any], processes: Sequence[ProcessInfo], processes_known: bool = True
) -> ClamavFacts:
    """Everything Tillsyn reports about ClamAV; never raises for expected conditions.

    ``processes_known``: the process list is complete (not hidden by ``hidepid``, not failed)."""
    facts = ClamavFacts()
    conf_path = str(settings["clamd_conf"])
    text = _read_conf(ctx, conf_path, "clamav.clamd_conf", facts)
    conf: Optional[ClamdConfig] = None
    if text is not None:
        try:
            conf = parse_clamd_conf(text)
        except ValueError as err:
            facts.gaps.append(Gap("clamav.clamd_conf", f"{conf_path}: {err}"))
    names = {p.name for p in processes}
    clamd: Dict[str, Any] = {"process_running": "clamd" in names}
    try:
        address = _address(settings, conf)
        no_address = (
            f"no clamd socket known: {conf_path} absent, unreadable or without "
            "LocalSocket/TCPSocket, and none in settings"
        )
    except ValueError as err:
        address, no_address = None, str(err)
    installed = clamd["process_running"] or ctx.path(conf_path).exists() or ctx.path(CLAMD_PROGRAM).exists()
    if address is None and processes_known and not installed:
        # Debian's "clamav" package brings freshclam without clamav-daemon: no scanner here.
        reason = f"clamd is not installed: no {conf_path}, no {CLAMD_PROGRAM}, no clamd process"
        clamd.update(address=None, responding=False, reason=reason)
    elif address is None:
        clamd.update(address=None, responding=None)
        facts.gaps.append(Gap("clamav.clamd", no_address))
    else:
        clamd.update(_ask_clamd(ctx, address, float(settings["socket_timeout"]), facts))
    db_dir = str(settings["database_dir"]) or (conf.database_directory if conf else DEFAULT_DATABASE_DIR)
    databases = _databases(ctx, db_dir, facts)
    times = [d["build_time"] for d in databases]
    facts.newest_signature_time = max(times) if times else None
    on_access: Dict[str, Any] = {"clamonacc_running": "clamonacc" in names}
    if conf is not None:
        configured = bool(conf.on_access_include_paths or conf.on_access_mount_paths)
        on_access.update(
            configured=configured,
            include_paths=list(conf.on_access_include_paths),
            mount_paths=list(conf.on_access_mount_paths),
        )
        facts.real_time_protection = _real_time(configured, on_access["clamonacc_running"], clamd["responding"])
    elif not ctx.path(conf_path).exists():
        on_access.update(configured=False, include_paths=[], mount_paths=[])
        facts.real_time_protection = False
    else:
        on_access["configured"] = None
    facts.scanner_running = clamd["responding"]
    facts.observed = {
        "clamd_conf": conf_path,
        "clamd_conf_present": ctx.path(conf_path).exists(),
        "clamd_conf_example": conf.example if conf else None,
        "clamd": clamd,
        "database_dir": db_dir,
        "databases": databases,
        "newest_signature_time": facts.newest_signature_time,
        "freshclam": _freshclam(ctx, str(settings["freshclam_conf"]), processes, facts),
        "on_access": on_access,
    }
    return facts
