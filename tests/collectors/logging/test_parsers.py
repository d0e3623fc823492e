"""The logging parsers over captured output (Debian 12 here), published output, and fuzzed input."""

from __future__ import annotations

import contextlib
from typing import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.logging import parse_audit, parse_journald, parse_logrotate, parse_rsyslog, parse_syslog_ng
from tests.conftest import FIXTURES

FIX = FIXTURES / "logging"


def read(name: str) -> str:
    return (FIX / name).read_text()


def test_auditctl_status_captured_published_and_refused() -> None:
    off = parse_audit.parse_status(read("auditctl-s_debian-12_audit-3.0.9_no-auditd.txt"))
    assert (off["enabled"], off["immutable"], off["pid"], off["failure_mode"]) == (False, False, 0, 1)
    on = parse_audit.parse_status(read("auditctl-s_ubuntu-22.04_auditd-3.0.7_published-running.txt"))
    assert (on["enabled"], on["pid"], on["backlog_limit"]) == (True, 21885, 8192)
    locked = parse_audit.parse_status(read("auditctl-s_published_audit-3_immutable.txt"))
    assert (locked["enabled"], locked["immutable"]) == (True, True)
    with pytest.raises(parse_audit.AuditFormatError):
        parse_audit.parse_status(read("auditctl-s_debian-12_audit-3.0.9_not-root.stderr.txt"))


def test_auditctl_rules_and_rules_files() -> None:
    assert parse_audit.parse_rules_list(read("auditctl-l_debian-12_audit-3.0.9_no-rules.txt")) == []
    rules = parse_audit.parse_rules_list(read("auditctl-l_published_audit-3_watches-and-syscalls.txt"))
    assert len(rules) == 6 and rules[0] == "-w /etc/kubernetes/pki -p wa -k k8s_pki"
    with pytest.raises(parse_audit.AuditFormatError, match="not a rule"):
        parse_audit.parse_rules_list("You must be root to run this program.\n")
    default = read("audit-rules_debian-12_auditd-3.0.9_default.rules")
    assert parse_audit.rules_in_file(default) == [] and not parse_audit.immutable_in_file(default)
    written = default + "-w /etc/shadow -p wa -k identity\n-a always,exit -F arch=b64 -S execve -k exec\n-e 2\n"
    assert len(parse_audit.rules_in_file(written)) == 2 and parse_audit.immutable_in_file(written)


def test_journald_default_and_drop_in() -> None:
    assert parse_journald.parse_section(read("journald-conf_debian-12_systemd-252.39_default.conf"), "Journal") == {}
    assert parse_journald.parse_section("[Journal]\nStorage=volatile\n[Other]\nStorage=x\n", "Journal") == {
        "Storage": "volatile"
    }
    assert [parse_journald.persistent(s, d) for s, d in [("auto", True), ("auto", False), ("persistent", False),
            ("volatile", True), ("bogus", True)]] == [True, False, True, False, None]  # fmt: skip
    with pytest.raises(parse_journald.IniFormatError, match="line 2"):
        parse_journald.parse_section("[Journal]\nStorage persistent\n", "Journal")
    upload = parse_journald.parse_section(read("journal-upload-conf_debian-12_systemd-252.39_default.conf"), "Upload")
    assert upload == {}


def test_rsyslog_default_forwards_nowhere_and_documented_forms_are_found() -> None:
    assert parse_rsyslog.forwarding_targets(read("rsyslog-conf_debian-12_rsyslog-8.2302.0_default.conf"), "f") == []
    text = (
        "*.* @@(o)logs.example.net:6514\n"
        "auth.*  @[2001:db8::1]\n"
        "# *.* @commented.example.net\n"
        "/* *.* @@block-commented.example.net */\n"
        "*.* :omrelp:relay.example.net:2514;RSYSLOG_ForwardFormat\n"
        'if $programname == "sshd" then action(type="omfwd"\n'
        '      target="siem.example.net" port="10514" protocol="tcp")\n'
        'action(type="omfile" file="/var/log/x")\n'
    )
    found = [(t["host"], t["port"], t["protocol"], t["source"]) for t in parse_rsyslog.forwarding_targets(text, "r")]
    assert found == [
        ("logs.example.net", 6514, "tcp", "r:1"),
        ("2001:db8::1", 514, "udp", "r:2"),
        ("relay.example.net", 2514, "relp", "r:5"),
        ("siem.example.net", 10514, "tcp", "r:6"),
    ]


def test_syslog_ng_destinations_used_or_not() -> None:
    default = read("syslog-ng-conf_debian-12_syslog-ng-3.38.1_default.conf")
    assert parse_syslog_ng.forwarding_targets(default, "s") == []
    text = default + (
        'destination d_net { network("logs.example.net" port(6514) transport("tls")); };  # to the SIEM\n'
        "destination d_old { udp(10.0.0.9); };\n"
        "log { source(s_src); filter(f_auth); destination(d_net); };\n"
        '# destination d_gone { tcp("gone.example.net"); };\n'
        'log { source(s_src); destination { syslog("collector.example.net" transport("tcp")); }; };\n'
    )
    found = {t["host"]: (t["port"], t["protocol"], t["used"]) for t in parse_syslog_ng.forwarding_targets(text, "s")}
    assert found == {
        "logs.example.net": (6514, "tls", True),
        "10.0.0.9": (514, "udp", False),
        "collector.example.net": (601, "tcp", True),
    }


def test_logrotate_debian_defaults() -> None:
    parsed = parse_logrotate.parse(
        read("logrotate-conf_debian-12_logrotate-3.21.0_default.conf"),
        {"rsyslog": read("logrotate-d-rsyslog_debian-12_rsyslog-8.2302.0_default")},
    )
    assert (parsed["default_frequency"], parsed["default_rotate"], parsed["default_retention_days"]) == (
        "weekly",
        4,
        28,
    )
    assert parse_logrotate.retention_of(parsed, "/var/log/auth.log") == 28
    assert parse_logrotate.retention_of(parsed, "/var/log/secure") is None
    custom = parse_logrotate.parse(
        "daily\nrotate 7\n", {"app": '"/srv/app/*.log" {\n monthly\n rotate 12\n maxage 200\n}\n'}
    )
    assert parse_logrotate.retention_of(custom, "/srv/app/access.log") == 200
    assert custom["default_retention_days"] == 7


# ---------------------------------------------------------------- fuzzing
PARSERS: dict[str, tuple[Callable[[str], object], tuple[type[Exception], ...], str]] = {
    "status": (parse_audit.parse_status, (parse_audit.AuditFormatError,), "auditctl-s_published_audit-3_immutable.txt"),
    "rules": (parse_audit.parse_rules_list, (parse_audit.AuditFormatError,),
              "auditctl-l_published_audit-3_watches-and-syscalls.txt"),
    "rules_file": (parse_audit.rules_in_file, (), "audit-rules_debian-12_auditd-3.0.9_default.rules"),
    "journald": (lambda t: parse_journald.parse_section(t, "Journal"), (parse_journald.IniFormatError,),
                 "journald-conf_debian-12_systemd-252.39_default.conf"),
    "rsyslog": (lambda t: parse_rsyslog.forwarding_targets(t, "f"), (),
                "rsyslog-conf_debian-12_rsyslog-8.2302.0_default.conf"),
    "syslog_ng": (lambda t: parse_syslog_ng.forwarding_targets(t, "f"), (),
                  "syslog-ng-conf_debian-12_syslog-ng-3.38.1_default.conf"),
    "logrotate": (lambda t: parse_logrotate.parse(t, {"x": t}), (),
                  "logrotate-d-rsyslog_debian-12_rsyslog-8.2302.0_default"),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(PARSERS))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_parsers_never_raise_anything_but_their_format_error(kind: str, data: st.DataObject) -> None:
    parse, errors, sample = PARSERS[kind]
    extra = (
        'destination d { network("h" port(1)); };\nlog { destination(d); };\n'
        '*.* @@h:1\naction(type="omfwd" target="t")\n'
    )
    text = data.draw(st.one_of(st.text(max_size=300), st.just(read(sample)[:3000] + extra)))
    chars = list(text)
    for _ in range(data.draw(st.integers(0, 8))):
        at = data.draw(st.integers(0, len(chars)))
        junk = data.draw(st.text(alphabet="{}()[]\"'#@:;=/*-\n 0123456789abe", max_size=6))
        chars[at : at + data.draw(st.integers(0, 6))] = junk
    with contextlib.suppress(*errors):
        parse("".join(chars))
