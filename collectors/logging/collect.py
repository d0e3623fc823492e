"""Access logging on this node (all I/O here): auditd and its rules, journald's storage,
forwarding off the host, and how long rotated logs are kept."""

from __future__ import annotations

import os
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from collectors.base import Context, Observed, describe_os_error
from collectors.logging import parse_audit, parse_journald, parse_logrotate, parse_rsyslog
from collectors.processes import running_names
from collectors.runner import CommandResult
from evidence.model import Gap, Outcome

Names = Optional[FrozenSet[str]]
JOURNALD_DROPIN_DIRS = (
    "/etc/systemd/journald.conf.d",
    "/run/systemd/journald.conf.d",
    "/usr/local/lib/systemd/journald.conf.d",
    "/usr/lib/systemd/journald.conf.d",
)
UPLOAD_UNIT = "systemd-journal-upload.service"
LOOPBACK = ("127.", "::1", "localhost", "0:0:0:0:0:0:0:1")


class _Reader:
    """Files below the context root; every unreadable one is a gap, a missing one is just absent."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.gaps: List[Gap] = []

    def text(self, absolute: str) -> Optional[str]:
        try:
            return self.ctx.read_text(absolute)
        except FileNotFoundError:
            return None
        except OSError as err:
            self.gaps.append(Gap(absolute, describe_os_error(err, absolute)))
            return None

    def listing(self, directory: str, suffix: str = "") -> List[str]:
        """Absolute paths of the files in ``directory`` ending in ``suffix``, sorted by name."""
        try:
            names = sorted(os.listdir(self.ctx.path(directory)))
        except FileNotFoundError:
            return []
        except OSError as err:
            self.gaps.append(Gap(directory, describe_os_error(err, directory)))
            return []
        return [f"{directory}/{n}" for n in names if n.endswith(suffix) and not n.startswith(".")]


def _running(names: Names, process: str) -> Optional[bool]:
    return None if names is None else process in names


# ---------------------------------------------------------------- auditd
def audit(ctx: Context, reader: _Reader, names: Names) -> Dict[str, Any]:
    settings = ctx.settings
    binary = str(settings.get("auditctl", "auditctl"))
    record: Dict[str, Any] = {
        "installed": None,
        "running": _running(names, "auditd"),
        "enabled": None,
        "immutable": None,
        "pid": None,
        "lost": None,
        "failure_mode": None,
        "rules": None,
        "rules_source": None,
        "rules_in_files": None,
        "reason": None,
    }
    files = _audit_rule_files(settings, reader)
    in_files = [rule for _path, text in files for rule in parse_audit.rules_in_file(text)]
    record["rules_in_files"] = len(in_files)
    status = ctx.command([binary, "-s"]) if binary else None
    if status is not None and status.ok:
        try:
            parsed = parse_audit.parse_status(status.text)
        except parse_audit.AuditFormatError as err:
            record["reason"] = f"auditctl -s: unreadable answer: {err}"
        else:
            record.update({k: parsed[k] for k in ("enabled", "immutable", "pid", "lost", "failure_mode")})
            record["installed"] = True
            record["running"] = bool(parsed["pid"])  # the kernel's own record of its audit daemon
            listed = ctx.command([binary, "-l"])
            try:
                rules = parse_audit.parse_rules_list(listed.text) if listed.ok else None
            except parse_audit.AuditFormatError as err:
                rules, record["reason"] = None, f"auditctl -l: unreadable answer: {err}"
            if rules is not None:
                record["rules"], record["rules_source"] = len(rules), "auditctl -l (the rules the kernel has loaded)"
            elif record["reason"] is None:
                record["reason"] = f"auditctl -l failed: {listed.describe_failure()}"
        return _rules_from_files(record, files, in_files)
    if status is not None and status.error == "not found" and not files:
        record.update({"installed": False, "running": False if record["running"] is None else record["running"]})
        record.update({"rules": 0, "rules_source": "auditd is not installed (no auditctl, no rules files)"})
        return record
    record["installed"] = True if files else None
    why = "auditctl is not asked (auditctl: '')" if status is None else f"auditctl -s: {_reason(status)}"
    record["reason"] = why
    return _rules_from_files(record, files, in_files)


def _reason(result: CommandResult) -> str:
    text = (result.stdout + result.stderr).decode("utf-8", "replace").strip().splitlines()
    return text[-1][:200] if text and result.error is None else result.describe_failure()


def _audit_rule_files(settings: Mapping[str, Any], reader: _Reader) -> List[Tuple[str, str]]:
    """auditd's rules file, else augenrules' directory (what auditd would load at its next start)."""
    main = str(settings.get("audit_rules_file", "/etc/audit/audit.rules"))
    text = reader.text(main)
    if text is not None:
        return [(main, text)]
    found = []
    for path in reader.listing(str(settings.get("audit_rules_dir", "/etc/audit/rules.d")), ".rules"):
        body = reader.text(path)
        if body is not None:
            found.append((path, body))
    return found


def _rules_from_files(record: Dict[str, Any], files: List[Tuple[str, str]], rules: List[str]) -> Dict[str, Any]:
    if record["rules"] is None and files:
        record["rules"] = len(rules)
        names = ", ".join(path for path, _ in files)
        record["rules_source"] = f"{names} (the files auditd loads at start; the loaded rules need auditctl as root)"
    if record["immutable"] is None and files:
        record["immutable_in_files"] = any(parse_audit.immutable_in_file(text) for _, text in files)
    return record


# ---------------------------------------------------------------- journald
def journald(ctx: Context, reader: _Reader) -> Dict[str, Any]:
    main = str(ctx.settings.get("journald_conf", "/etc/systemd/journald.conf"))
    chosen: Dict[str, str] = {}
    for directory in reversed(JOURNALD_DROPIN_DIRS):  # /etc overrides /run overrides /usr/lib, by file name
        for path in reader.listing(directory, ".conf"):
            chosen[os.path.basename(path)] = path
    values: Dict[str, str] = {}
    sources: Dict[str, str] = {}
    for path in [main] + [chosen[name] for name in sorted(chosen)]:
        text = reader.text(path)
        if text is None:
            continue
        try:
            section = parse_journald.parse_section(text, "Journal")
        except parse_journald.IniFormatError as err:
            reader.gaps.append(Gap(path, f"unreadable: {err}"))
            continue
        values.update(section)
        sources.update({key: path for key in section})
    storage = values.get("Storage", "auto")
    journal_dir = ctx.path("/var/log/journal").is_dir()
    running = ctx.path("/run/systemd/journal/socket").exists()
    persistent = parse_journald.persistent(storage, journal_dir) if running else False
    return {
        "reason": _journal_reason(running, storage, sources.get("Storage"), journal_dir, persistent),
        "running": running,
        "storage": storage,
        "storage_source": sources.get("Storage", "default (auto)"),
        "journal_dir_exists": journal_dir,
        "persistent": persistent,
        "system_max_use": values.get("SystemMaxUse") or None,
        "max_retention": values.get("MaxRetentionSec") or None,
        "forward_to_syslog": parse_journald_bool(values.get("ForwardToSyslog")),
    }


def _journal_reason(
    running: bool, storage: str, source: Optional[str], journal_dir: bool, persistent: Optional[bool]
) -> Optional[str]:
    """Why the journal is not kept on disk, as a phrase (None when it is)."""
    if persistent:
        return None
    if not running:
        return "systemd-journald is not running (no /run/systemd/journal/socket)"
    where = f" (set in {source})" if source else " (the default)"
    if persistent is None:
        return f"Storage={storage}{where} is not a value journald accepts"
    if storage == "auto":
        return f"Storage=auto{where} and /var/log/journal does not exist"
    return f"Storage={storage}{where}"


def parse_journald_bool(value: Optional[str]) -> Optional[bool]:
    if value is None:
        return None
    return {
        "yes": True,
        "true": True,
        "1": True,
        "on": True,
        "no": False,
        "false": False,
        "0": False,
        "off": False,
    }.get(value.lower())


# ---------------------------------------------------------------- forwarding
def forwarding(ctx: Context, reader: _Reader, names: Names) -> Dict[str, Any]:
    settings = ctx.settings
    targets: List[Dict[str, Any]] = []
    rsyslog = str(settings.get("rsyslog_conf", "/etc/rsyslog.conf"))
    for path in [rsyslog, *reader.listing(os.path.dirname(rsyslog) + "/rsyslog.d", ".conf")]:
        text = reader.text(path)
        if text is not None:
            for target in parse_rsyslog.forwarding_targets(text, path):
                targets.append(dict(target, used=True, daemon_running=_running(names, "rsyslogd")))
    syslog_ng = str(settings.get("syslog_ng_conf", "/etc/syslog-ng/syslog-ng.conf"))
    for path in [syslog_ng, *reader.listing(os.path.dirname(syslog_ng) + "/conf.d", ".conf")]:
        text = reader.text(path)
        if text is not None:
            # Imported here: only machines with a syslog-ng configuration need this parser.
            from collectors.logging import parse_syslog_ng

            for target in parse_syslog_ng.forwarding_targets(text, path):
                targets.append(dict(target, daemon_running=_running(names, "syslog-ng")))
    targets.extend(_journal_upload(ctx, reader))
    for target in targets:
        target["off_host"] = not str(target["host"]).lower().startswith(LOOPBACK)
        target["active"] = _active(target)
    live = [t for t in targets if t["off_host"]]
    if any(t["active"] is True for t in live):
        forwarded: Optional[bool] = True
    elif any(t["active"] is None for t in live):
        forwarded = None
    else:
        forwarded = False
    hosts = sorted({str(t["host"]) for t in live if t["active"] is not False})
    return {"forwarded": forwarded, "hosts": hosts, "reason": _forward_reason(targets, forwarded), "targets": targets}


def _forward_reason(targets: List[Dict[str, Any]], forwarded: Optional[bool]) -> Optional[str]:
    """Why nothing is known to be forwarded, as a phrase (None when something is)."""
    if forwarded:
        return None
    if not targets:
        return "no rsyslog, syslog-ng or systemd-journal-upload configuration names a remote target"
    why = []
    for t in targets:
        where = f"{t['host']} ({t['daemon']}, {t['source']})"
        if not t["off_host"]:
            why.append(f"{where} is this host")
        elif not t.get("used"):
            what = "no log path uses it" if t["daemon"] == "syslog-ng" else "the unit is not enabled"
            why.append(f"{where}: {what}")
        elif t.get("daemon_running") is False:
            why.append(f"{where}: the daemon is not running")
        else:
            why.append(f"{where}: whether the daemon runs is unknown")
    return "; ".join(why)


def _active(target: Mapping[str, Any]) -> Optional[bool]:
    if not target.get("used"):
        return False
    running = target.get("daemon_running")
    return None if running is None else bool(running)


def _journal_upload(ctx: Context, reader: _Reader) -> List[Dict[str, Any]]:
    path = str(ctx.settings.get("journal_upload_conf", "/etc/systemd/journal-upload.conf"))
    text = reader.text(path)
    if text is None:
        return []
    try:
        url = parse_journald.parse_section(text, "Upload").get("URL", "")
    except parse_journald.IniFormatError as err:
        reader.gaps.append(Gap(path, f"unreadable: {err}"))
        return []
    if not url:
        return []
    parts = urlsplit(url if "://" in url else f"http://{url}")
    enabled = any(
        ctx.path(f"/etc/systemd/system/{wants}/{UPLOAD_UNIT}").exists()
        for wants in ("multi-user.target.wants", "default.target.wants")
    )
    return [
        {
            "daemon": "systemd-journal-upload",
            "host": parts.hostname or url,
            "port": parts.port or (443 if parts.scheme == "https" else 19532),
            "protocol": parts.scheme or "http",
            "source": path,
            "used": enabled,
            "daemon_running": enabled,  # its process name cannot be told from journald's
        }
    ]


# ---------------------------------------------------------------- retention
def retention(ctx: Context, reader: _Reader, journal: Mapping[str, Any]) -> Dict[str, Any]:
    main = str(ctx.settings.get("logrotate_conf", "/etc/logrotate.conf"))
    text = reader.text(main)
    files: Dict[str, str] = {}
    for path in reader.listing(os.path.dirname(main) + "/logrotate.d"):
        if ".dpkg-" in path or path.endswith(("~", ".rpmnew", ".rpmsave")):
            continue  # logrotate(8) skips these too (tabooext)
        body = reader.text(path)
        if body is not None:
            files[os.path.basename(path)] = body
    result: Dict[str, Any] = {"logrotate_configured": text is not None}
    parsed = parse_logrotate.parse(text or "", files)
    result.update({k: parsed[k] for k in ("default_frequency", "default_rotate", "default_retention_days")})
    result["logs"] = []
    for log in ctx.settings.get("retention_logs", []):
        block = parse_logrotate.block_of(parsed, log)  # named exactly or by a pattern, as logrotate reads it
        if block is not None:
            result["logs"].append({"path": log, "retention_days": block["retention_days"]})
    result["journal_max_retention"] = journal.get("max_retention")
    result["journal_system_max_use"] = journal.get("system_max_use")
    return result


def collect(ctx: Context) -> Outcome:
    names, _why = running_names(ctx)
    reader = _Reader(ctx)
    gaps: List[Gap] = []
    audit_facts = audit(ctx, reader, names)
    if audit_facts["running"] is None or (audit_facts["reason"] and audit_facts["rules_source"] is None):
        gaps.append(Gap("auditd", audit_facts["reason"] or "whether auditd runs is unknown"))
    journal = journald(ctx, reader)
    sent = forwarding(ctx, reader, names)
    if sent["forwarded"] is None:
        gaps.append(Gap("log forwarding", "the process list was unreadable: whether the syslog daemon runs is unknown"))
    observed: Observed = {
        "audit": audit_facts,
        "journald": journal,
        "forwarding": sent,
        "retention": retention(ctx, reader, journal),
    }
    return Outcome.from_parts(observed, gaps + reader.gaps)


def summary(observed: Mapping[str, Any]) -> str:
    """E.g. ``auditd running, 12 rules; journal persistent; forwarded to logs.example.net``."""
    audit_facts, journal, sent = (
        observed.get("audit") or {},
        observed.get("journald") or {},
        observed.get("forwarding") or {},
    )
    word = {True: "running", False: "NOT running", None: "state unknown"}[audit_facts.get("running")]
    parts = [f"auditd {word}, {audit_facts.get('rules')} rules"]
    parts.append(
        "journal " + {True: "persistent", False: "NOT persistent", None: "storage unknown"}[journal.get("persistent")]
    )
    if sent.get("forwarded"):
        parts.append("forwarded to " + ", ".join(sent.get("hosts") or []))
    else:
        parts.append({False: "NOT forwarded off the host", None: "forwarding unknown"}[sent.get("forwarded")])
    return "; ".join(parts)
