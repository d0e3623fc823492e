"""Settings of the logging collector: where auditd, journald, the syslog daemons and logrotate
keep their configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence

from collectors.settings import Field, Schema

SETTINGS: Schema = {
    "auditctl": Field(str, "auditctl", "auditctl command; empty: read the rules files only"),
    "audit_rules_dir": Field(str, "/etc/audit/rules.d", "augenrules' rules directory"),
    "audit_rules_file": Field(str, "/etc/audit/audit.rules", "the rules file auditd loads at start"),
    "journald_conf": Field(str, "/etc/systemd/journald.conf", "journald's main configuration file"),
    "rsyslog_conf": Field(str, "/etc/rsyslog.conf", "rsyslog's main file (its rsyslog.d/*.conf are read too)"),
    "syslog_ng_conf": Field(
        str, "/etc/syslog-ng/syslog-ng.conf", "syslog-ng's main file (its conf.d/*.conf are read too)"
    ),
    "journal_upload_conf": Field(str, "/etc/systemd/journal-upload.conf", "systemd-journal-upload's file"),
    "logrotate_conf": Field(str, "/etc/logrotate.conf", "logrotate's main file (logrotate.d/* are read too)"),
    "retention_logs": Field(
        list,
        ["/var/log/auth.log", "/var/log/secure", "/var/log/syslog", "/var/log/messages"],
        "log files whose retention (logrotate) is reported by name",
    ),
}


def watch_paths(settings: Mapping[str, Any], state_dir: Optional[Path] = None) -> Sequence[str]:
    """Configuration whose change alters the logging facts."""
    paths: List[str] = [
        str(settings.get(key, SETTINGS[key].default))
        for key in ("audit_rules_file", "journald_conf", "rsyslog_conf", "syslog_ng_conf", "journal_upload_conf")
    ]
    return paths
