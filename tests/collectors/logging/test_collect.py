"""The logging collector on node trees (Debian 12's packaged files plus forwarding written per the
daemons' documentation), auditctl from captured output, and the real auditctl of this machine."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from collectors.base import Context
from collectors.logging import SPEC
from collectors.runner import CommandResult
from collectors.settings import validate
from evidence.model import Outcome, Status
from tests.conftest import FIXTURES, require_root, require_tool
from tests.evidence.shipped import judge_shipped

FIX = FIXTURES / "logging"
RUNNING_AUDIT = {"-s": "auditctl-s_ubuntu-22.04_auditd-3.0.7_published-running.txt",
                 "-l": "auditctl-l_published_audit-3_watches-and-syscalls.txt"}  # fmt: skip


class Replay:
    """auditctl answering from captured files: {"-s": file or (stderr file, rc), "-l": ...}."""

    def __init__(self, answers: Dict[str, Any]) -> None:
        self.answers = answers
        self.calls: List[Tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str], **_: Any) -> CommandResult:
        self.calls.append(tuple(argv))
        answer = self.answers.get(argv[-1])
        if answer is None:
            return CommandResult(argv, None, b"", b"", "not found")
        if isinstance(answer, tuple):
            return CommandResult(argv, answer[1], b"", (FIX / answer[0]).read_bytes())
        return CommandResult(argv, 0, (FIX / answer).read_bytes(), b"")


def tree(root: Path, files: Dict[str, Any], processes: Sequence[str] = ()) -> Path:
    for absolute, content in files.items():
        target = root / absolute.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, target)
        elif content is None:
            target.mkdir(exist_ok=True)
        else:
            target.write_text(content)
    for pid, name in enumerate(["init", *processes], 1):
        (root / "proc" / str(pid)).mkdir(parents=True, exist_ok=True)
        (root / "proc" / str(pid) / "comm").write_text(name + "\n")
    return root


def debian(root: Path, extra: Dict[str, Any], processes: Sequence[str] = ("rsyslogd",)) -> Path:
    """A Debian 12 node as its packages install it: rsyslog, logrotate, auditd, journald."""
    files: Dict[str, Any] = {
        "/etc/rsyslog.conf": FIX / "rsyslog-conf_debian-12_rsyslog-8.2302.0_default.conf",
        "/etc/rsyslog.d": None,
        "/etc/logrotate.conf": FIX / "logrotate-conf_debian-12_logrotate-3.21.0_default.conf",
        "/etc/logrotate.d/rsyslog": FIX / "logrotate-d-rsyslog_debian-12_rsyslog-8.2302.0_default",
        "/etc/audit/rules.d/audit.rules": FIX / "audit-rules_debian-12_auditd-3.0.9_default.rules",
        "/etc/systemd/journald.conf": FIX / "journald-conf_debian-12_systemd-252.39_default.conf",
        "/run/systemd/journal/socket": "",
        "/var/log/journal": None,
    }
    files.update(extra)
    return tree(root, files, processes)


def collect(root: Path, answers: Dict[str, Any], **settings: Any) -> Tuple[Outcome, Replay]:
    replay = Replay(answers)
    ctx = Context(root=root, settings=validate(settings, SPEC.settings, "collectors.logging"))
    ctx.run = replay
    return SPEC.collect(ctx), replay


def test_a_well_configured_node_passes_every_rule(tmp_path: Path) -> None:
    root = debian(
        tmp_path,
        {
            "/etc/rsyslog.d/90-forward.conf": (
                '*.* action(type="omfwd" target="logs.example.net" port="6514" protocol="tcp")\n'
            ),
            "/etc/systemd/journald.conf.d/50-persistent.conf": "[Journal]\nStorage=persistent\n",
        },
        processes=("rsyslogd", "auditd"),
    )
    outcome, _ = collect(root, RUNNING_AUDIT)
    o = outcome.observed
    assert outcome.status is Status.COMPLETE, outcome.gaps
    assert (o["audit"]["running"], o["audit"]["rules"], o["audit"]["pid"]) == (True, 6, 21885)
    assert o["audit"]["rules_source"] == "auditctl -l (the rules the kernel has loaded)"
    assert (o["journald"]["storage"], o["journald"]["persistent"]) == ("persistent", True)
    assert o["journald"]["storage_source"] == "/etc/systemd/journald.conf.d/50-persistent.conf"
    assert o["forwarding"]["forwarded"] is True and o["forwarding"]["hosts"] == ["logs.example.net"]
    assert o["forwarding"]["targets"][0]["source"] == "/etc/rsyslog.d/90-forward.conf:1"
    assert o["retention"]["logs"] == [{"path": "/var/log/auth.log", "retention_days": 28},
                                      {"path": "/var/log/syslog", "retention_days": 28}]  # fmt: skip
    verdicts = judge_shipped("logging", outcome)
    assert set(verdicts.values()) == {"passing"} and len(verdicts) == 4
    assert SPEC.summary(o) == "auditd running, 6 rules; journal persistent; forwarded to logs.example.net"


def test_debian_defaults_without_auditd_fail_auditd_and_forwarding(tmp_path: Path) -> None:
    root = debian(tmp_path, {})
    outcome, _ = collect(root, {"-s": "auditctl-s_debian-12_audit-3.0.9_no-auditd.txt",
                                "-l": "auditctl-l_debian-12_audit-3.0.9_no-rules.txt"})  # fmt: skip
    o = outcome.observed
    assert (o["audit"]["running"], o["audit"]["enabled"], o["audit"]["rules"]) == (False, False, 0)
    # Storage=auto with /var/log/journal present: persistent
    assert (o["journald"]["storage"], o["journald"]["persistent"]) == ("auto", True)
    assert o["forwarding"] == {
        "forwarded": False,
        "hosts": [],
        "reason": "no rsyslog, syslog-ng or systemd-journal-upload configuration names a remote target",
        "targets": [],
    }
    assert judge_shipped("logging", outcome) == {
        "logging-auditd-running": "failing",
        "logging-audit-rules": "failing",
        "logging-journal-persistent": "passing",
        "logging-forwarded": "failing",
    }


def test_not_root_reads_the_rules_files_and_says_so(tmp_path: Path) -> None:
    rules = "-D\n-w /etc/shadow -p wa -k identity\n-w /etc/sudoers -p wa -k scope\n-e 2\n"
    root = debian(tmp_path, {"/etc/audit/audit.rules": rules}, processes=("auditd",))
    outcome, _ = collect(root, {"-s": ("auditctl-s_debian-12_audit-3.0.9_not-root.stderr.txt", 4)})
    audit = outcome.observed["audit"]
    assert (audit["running"], audit["rules"], audit["immutable_in_files"]) == (True, 2, True)
    assert audit["rules_source"].startswith("/etc/audit/audit.rules (the files auditd loads at start;")
    assert audit["reason"] == "auditctl -s: You must be root to run this program."
    assert judge_shipped("logging", outcome)["logging-audit-rules"] == "passing"


def test_volatile_journal_syslog_ng_forwarding_and_unused_destination(tmp_path: Path) -> None:
    ng = (FIX / "syslog-ng-conf_debian-12_syslog-ng-3.38.1_default.conf").read_text()
    root = tree(
        tmp_path,
        {
            "/etc/syslog-ng/syslog-ng.conf": ng,
            "/etc/syslog-ng/conf.d/remote.conf": 'destination d_siem { network("10.1.2.3" port(514)); };\n',
            "/etc/systemd/journald.conf": "[Journal]\nStorage=volatile\n",
            "/run/systemd/journal/socket": "",
        },
        processes=("syslog-ng",),
    )
    outcome, _ = collect(root, {})
    o = outcome.observed
    assert o["journald"]["persistent"] is False and o["journald"]["reason"] == (
        "Storage=volatile (set in /etc/systemd/journald.conf)"
    )
    assert o["forwarding"]["forwarded"] is False  # the destination exists but no log path uses it
    assert o["forwarding"]["targets"][0]["used"] is False
    assert o["forwarding"]["reason"] == "10.1.2.3 (syslog-ng, /etc/syslog-ng/conf.d/remote.conf:1): no log path uses it"
    (root / "etc/syslog-ng/conf.d/remote.conf").write_text(
        'destination d_siem { network("10.1.2.3" port(514)); };\nlog { source(s_src); destination(d_siem); };\n'
    )
    again, _ = collect(root, {})
    assert again.observed["forwarding"]["hosts"] == ["10.1.2.3"]
    assert judge_shipped("logging", again)["logging-forwarded"] == "passing"


def test_loopback_forwarding_is_not_off_host_and_unknown_daemon_state_is_unknown(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for path, text in {"/etc/rsyslog.conf": "*.* @@127.0.0.1:10514\n*.* @@logs.example.net\n"}.items():
        (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / path.lstrip("/")).write_text(text)
    outcome, _ = collect(root, {})  # no /proc in this tree: whether rsyslogd runs is unknown
    sent = outcome.observed["forwarding"]
    assert [t["off_host"] for t in sent["targets"]] == [False, True]
    assert sent["forwarded"] is None and sent["hosts"] == ["logs.example.net"]
    assert outcome.status is Status.PARTIAL
    assert [g.what for g in outcome.gaps] == ["log forwarding"]
    # no auditctl and no rules files: auditd is not installed, which is known, not a gap
    assert (outcome.observed["audit"]["installed"], outcome.observed["audit"]["running"]) == (False, False)
    assert judge_shipped("logging", outcome)["logging-forwarded"] == "unknown"


def test_journal_upload_counts_when_enabled(tmp_path: Path) -> None:
    upload = "[Upload]\nURL=https://journal.example.net:19532\n"
    unit = "/etc/systemd/system/multi-user.target.wants/systemd-journal-upload.service"
    root = debian(tmp_path, {"/etc/systemd/journal-upload.conf": upload})
    before, _ = collect(root, RUNNING_AUDIT)
    assert before.observed["forwarding"]["forwarded"] is False
    (root / unit.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
    (root / unit.lstrip("/")).write_text("")
    after, _ = collect(root, RUNNING_AUDIT)
    target = after.observed["forwarding"]["targets"][0]
    assert (target["daemon"], target["host"], target["port"], target["protocol"]) == (
        "systemd-journal-upload", "journal.example.net", 19532, "https")  # fmt: skip
    assert after.observed["forwarding"]["forwarded"] is True


def test_unreadable_configuration_is_a_gap(tmp_path: Path) -> None:
    root = debian(tmp_path, {"/etc/rsyslog.d/broken.conf": None})  # a directory where a file should be
    outcome, _ = collect(root, RUNNING_AUDIT)
    assert outcome.status is Status.PARTIAL
    (gap,) = outcome.gaps
    assert gap.what == "/etc/rsyslog.d/broken.conf" and gap.reason.startswith("cannot read /etc/rsyslog.d/broken.conf")


def test_the_real_auditctl_of_this_machine(tmp_path: Path) -> None:
    """As root, the collector's audit facts are those `auditctl -s` gives this kernel right now."""
    require_root("auditctl -s needs CAP_AUDIT_CONTROL")
    auditctl = require_tool("auditctl")
    direct = subprocess.run([auditctl, "-s"], capture_output=True, text=True, timeout=10, check=False)
    if direct.returncode != 0:
        require_root(f"this kernel's audit netlink is not reachable here: {direct.stderr.strip()}")
    ctx = Context(root=Path("/"), settings=validate({"auditctl": auditctl}, SPEC.settings, "collectors.logging"))
    audit = SPEC.collect(ctx).observed["audit"]
    pid = int(next(line.split()[1] for line in direct.stdout.splitlines() if line.startswith("pid ")))
    enabled = int(next(line.split()[1] for line in direct.stdout.splitlines() if line.startswith("enabled ")))
    assert (audit["pid"], audit["running"], audit["enabled"]) == (pid, pid > 0, enabled > 0)
    assert audit["rules_source"] == "auditctl -l (the rules the kernel has loaded)"


def test_retention_of_a_log_a_pattern_names(tmp_path: Path) -> None:
    """A log named only by a block's shell pattern is listed, as logrotate rotates it."""
    app = '"/srv/app/*.log" {\n  daily\n  rotate 90\n}\n'
    root = debian(tmp_path, {"/etc/logrotate.d/app": app})
    outcome, _ = collect(root, RUNNING_AUDIT, retention_logs=["/var/log/syslog", "/srv/app/access.log", "/srv/x.log"])
    assert outcome.observed["retention"]["logs"] == [
        {"path": "/var/log/syslog", "retention_days": 28},
        {"path": "/srv/app/access.log", "retention_days": 90},
    ]


def test_journald_drop_ins_override_by_directory_then_by_name(tmp_path: Path) -> None:
    """journald.conf(5): a drop-in in /etc replaces one of the same name in /usr/lib; among the
    rest, the later name wins over the main file and earlier names."""
    root = debian(
        tmp_path,
        {
            "/etc/systemd/journald.conf": "[Journal]\nStorage=persistent\n",
            "/usr/lib/systemd/journald.conf.d/60-vendor.conf": "[Journal]\nStorage=persistent\n",
            "/etc/systemd/journald.conf.d/60-vendor.conf": "[Journal]\nStorage=volatile\n",
            "/run/systemd/journald.conf.d/10-early.conf": "[Journal]\nStorage=auto\n",
        },
    )
    journal = collect(root, RUNNING_AUDIT)[0].observed["journald"]
    assert (journal["storage"], journal["storage_source"], journal["persistent"]) == (
        "volatile", "/etc/systemd/journald.conf.d/60-vendor.conf", False)  # fmt: skip
    (root / "etc/systemd/journald.conf.d/60-vendor.conf").unlink()
    journal = collect(root, RUNNING_AUDIT)[0].observed["journald"]
    assert (journal["storage"], journal["storage_source"]) == (
        "persistent", "/usr/lib/systemd/journald.conf.d/60-vendor.conf")  # fmt: skip
