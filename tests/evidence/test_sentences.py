"""Every shipped rule says, in words, what it found: passing, failing and unknown evidence."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List, Mapping

import pytest

from evidence.policy import PolicyError, parse_policy
from evidence.rules import Verdict, evaluate
from evidence.sentences import Context, parse_template, render
from evidence.telling import resolved

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "policy.yaml"
NOW = datetime(2026, 12, 7, 3, 0, tzinfo=timezone.utc)
OPERATOR_WORDS = re.compile(
    r"is_true|is_false|not_null|max_age|not_in|\bne\b|\bge\b|\beq\b|\d+ of \d+ fail|deviates|"
    r"undecided|where none is allowed|[{}]|\bNone\b|\bTrue\b|\bFalse\b|\[\]|'[^'\s]*'|"
    # a field's name (on_line, offset_abs_s), not part of a path such as /etc/ssh/sshd_config
    r"(?<![\w/.@-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w/.@-])|"
    r"a list with members not seen|\b1 (?:sockets|keys|SSH keys|entries|rules|reports|updates|days|hours)\b"
)


def at(**delta: float) -> str:
    return (NOW - timedelta(**delta)).isoformat().replace("+00:00", "Z")


def ups(**changes: Any) -> Dict[str, Any]:
    base = {"name": "acc", "server": "ups1:3493", "status_raw": "OL", "flags": ["OL"], "on_line": True,
            "battery_charge_pct": 100.0, "runtime_s": 3600, "self_test_result": "Done and passed",
            "self_test_date": at(days=3)}  # fmt: skip
    return {**base, **changes}


def backup(**changes: Any) -> Dict[str, Any]:
    base = {"name": "X", "type": "restic", "status": "ok", "reason": None, "repository": "sftp:nas01:/srv/restic",
            "separate": True, "separate_reason": "remote repository (sftp) on nas01", "encrypted": True,
            "encryption": "restic (always encrypted)", "last_success_at": at(hours=3),
            "restore_test": {"tested_at": at(days=10), "result": "passed", "detail": None}}  # fmt: skip
    return {**base, **changes}


def sock(port: int, service: str, tags: List[Any], process: Any = None, address: str = "127.0.0.1") -> Dict[str, Any]:
    return {"protocol": "tcp", "address": address, "port": port, "services": [service], "tags": tags,
            "exposure": "loopback" if address.startswith("127.") else "all",
            "process": process}  # fmt: skip


CLAM = {"product": "clamav", "name": "ClamAV", "installed": True, "running": True,
        "signature_time": at(hours=5), "real_time_protection": True}  # fmt: skip
MOUNT = {"mountpoint": "/", "fstype": "ext4", "device": "dm-1", "encrypted": True, "boot": False, "volatile": False,
         "chain": ["vda -> vda2 (part) -> dm-0 (crypt LUKS2)"]}  # fmt: skip
SWAP = {"path": "/dev/dm-2", "device": "dm-2", "encrypted": True, "volatile": False, "chain": ["vda3 -> dm-2"]}
TELNETD = {"pid": 4121, "name": "telnetd"}
FW_SSH = {"protocol": "tcp", "address": "0.0.0.0", "port": 22, "process": "sshd", "reachable_from_anywhere": True,
          "allowed_open": True, "reason": "accepted by inet filter input rule 8"}  # fmt: skip
VNC = {"kind": "listener", "service": "vnc", "protocol": "tcp", "address": "0.0.0.0", "port": 5901, "process": "Xvnc",
       "pid": 812, "remote_service": True}  # fmt: skip
VENDOR = {"name": "hpsupport", "present": True, "password": "locked", "expired": True, "authorized_keys": 0,
          "locked": True, "reason": "expired since 1970-01-02"}  # fmt: skip
ROOT = {"user": "root", "uid": 0, "shell": "/bin/bash", "password": "hashed", "personal": False, "dormant": False}

EVIDENCE: Mapping[str, Mapping[str, Dict[str, Any]]] = {
    "passing": {
        "power": {"ups_count": 1, "ups": [ups()], "shutdown_client_configured": True},
        "disk_encryption": {"mounts": [MOUNT], "swaps": [SWAP]},
        "antivirus": {"products": [CLAM]},
        "backup": {"backups": [backup()]},
        "ports": {"sockets": [sock(22, "ssh", [], {"pid": 1, "name": "sshd"}, "0.0.0.0"),
                              sock(5432, "postgresql", ["database"], {"pid": 9, "name": "postgres"})]},
        "time": {"synchronised": True, "source": "chrony", "reference": "ntp1.example.net", "stratum": 3,
                 "offset_abs_s": 0.0012},
        "sshd": {"contexts": [{"context": "global", "permit_root_login": "prohibit-password",
                               "password_login_possible": False, "permit_empty_passwords": False}],
                 "not_modern": []},
        "updates": {"security_count": 0, "pending_count": 0, "lists_updated_at": at(hours=3),
                    "reboot_required": False, "running_kernel_is_newest": True, "running_kernel": "6.1.0-9-amd64"},
        "accounts": {"accounts": [ROOT, dict(ROOT, user="u1", uid=1000, personal=True)], "duplicate_uids": [],
                     "sudo_rules": [{"source": "/etc/sudoers", "user": None, "group": "sudo",
                                     "all_commands": True, "nopasswd": False}]},
        "firewall": {"active": True, "default_denies": True, "input_default": {"ipv4": "closed", "ipv6": "closed"},
                     "sockets": [FW_SSH]},
        "file_integrity": {"changes": [], "changes_total": 0},
        "service_access": {"entrances": [], "accounts": [VENDOR]},
        "logging": {"audit": {"running": True, "pid": 612, "rules": 14, "rules_source": "loaded (auditctl -l)"},
                    "journald": {"persistent": True, "storage": "persistent"},
                    "forwarding": {"forwarded": True, "hosts": ["logs.example.net"]}},
    },
    "failing": {
        "power": {"ups_count": 0, "shutdown_client_configured": False,
                  "ups": [ups(status_raw="OB DISCHRG LB RB", flags=["OB", "DISCHRG", "LB", "RB"], on_line=False,
                              runtime_s=1740, battery_charge_pct=18.0, self_test_result="Done and error",
                              self_test_date=at(days=40))]},
        "disk_encryption": {"mounts": [dict(MOUNT, device="vda", encrypted=False, chain=["vda"])],
                            "swaps": [dict(SWAP, path="/swapfile", device="vda", encrypted=False)]},
        "antivirus": {"products": [dict(CLAM, running=False, real_time_protection=False)]},
        "backup": {"backups": [backup(last_success_at=at(days=10), separate=False, encrypted=False,
                                      separate_reason="local path /var/backups is on ext4 /dev/vda1: on this node",
                                      encryption="none", status="error", reason="wrong password",
                                      restore_test={"tested_at": at(days=100), "result": "failed",
                                                    "detail": "3 files differ"})]},
        "ports": {"sockets": [sock(23, "telnet", ["plaintext_remote", "remote_service"], TELNETD, "0.0.0.0"),
                              sock(5432, "postgresql", ["database"], {"pid": 9, "name": "postgres"}, "::")]},
        "time": {"synchronised": False, "source": "chrony", "offset_abs_s": 2.5, "reference": None,
                 "reason": "chronyd has no selectable source now (2 configured)"},
        "sshd": {"contexts": [{"context": "global", "permit_root_login": "yes", "password_login_possible": True,
                               "password_authentication": "yes", "kbd_interactive_authentication": "no",
                               "authentication_methods": "any", "permit_empty_passwords": True}],
                 "not_modern": [{"kind": "cipher", "name": "3des-cbc"}]},
        "updates": {"security_count": 3, "pending_count": 12, "lists_updated_at": at(days=5),
                    "reboot_required": True, "reboot_required_packages": ["linux-image-6.1.0-10-amd64"],
                    "running_kernel_is_newest": False, "running_kernel": "6.1.0-9-amd64",
                    "newest_kernel": "6.1.0-10-amd64"},
        "accounts": {"accounts": [dict(ROOT, user="toor", shell="/bin/sh", password="empty", personal=True,
                                       dormant=True, last_login=at(days=200))],
                     "duplicate_uids": [{"uid": 0, "users": ["root", "toor"]}],
                     "sudo_rules": [{"source": "/etc/sudoers.d/deploy", "user": "deploy", "group": None,
                                     "all_commands": True, "nopasswd": True}]},
        "firewall": {"active": False, "default_denies": False, "input_default": {"ipv4": "open", "ipv6": "open"},
                     "sockets": [dict(FW_SSH, port=8080, reachable_from_anywhere=True, allowed_open=False,
                                      process="java", reason="no input chain filters this traffic")]},
        "file_integrity": {"changes": [{"path": "/etc/sudoers", "change": "modified", "changed_at": at(hours=1),
                                        "process": {"name": "vi"}, "login": "u1"}], "changes_total": 1},
        "service_access": {"entrances": [VNC], "accounts": [dict(VENDOR, password="hash", expired=False, locked=False,
                                                                 reason="a password can log in")]},
        "logging": {"audit": {"running": False, "rules": 0, "rules_source": "loaded (auditctl -l)"},
                    "journald": {"persistent": False, "storage": "auto", "storage_source": "default (auto)"},
                    "forwarding": {"forwarded": False, "hosts": []}},
    },
    "unknown": {
        "power": {"ups_count": None, "shutdown_client_configured": None,
                  "ups": [ups(flags=["OL", None], on_line=None, self_test_result=None, self_test_date=None)]},
        "disk_encryption": {"mounts": [dict(MOUNT, encrypted=None)], "swaps": None},
        "antivirus": {"products": [dict(CLAM, running=None, signature_time=None, real_time_protection=None)]},
        "backup": {"backups": [backup(status=None, last_success_at=None, separate=None, encrypted=None,
                                      restore_test=None)]},
        "ports": {"sockets": [sock(2024, "", [None], None, "0.0.0.0")]},
        "time": {"synchronised": None, "offset_abs_s": None, "reason": "chronyc: permission denied"},
        "sshd": {"contexts": [{"context": "global", "permit_root_login": None, "password_login_possible": None,
                               "permit_empty_passwords": None}], "not_modern": None},
        "updates": {"security_count": None, "pending_count": None, "lists_updated_at": None,
                    "lists_source": "no /var/lib/apt/lists", "reboot_required": None,
                    "running_kernel_is_newest": None},
        "accounts": {"accounts": [{"user": "u2", "uid": None, "password": None, "personal": None, "dormant": None}],
                     "duplicate_uids": None, "sudo_rules": [{"source": "/etc/sudoers", "nopasswd": None}]},
        "firewall": {"active": None, "default_denies": None, "input_default": {"ipv4": "unknown", "ipv6": "closed"},
                     "sockets": [dict(FW_SSH, port=8080, reachable_from_anywhere=None, allowed_open=False,
                                      reason="nft: permission denied")]},
        "file_integrity": {"changes": [None], "changes_total": None},
        "service_access": {"entrances": [dict(VNC, port=40000, service=None, process=None, pid=None,
                                              remote_service=None)],
                           "accounts": [dict(VENDOR, password=None, expired=None, locked=None,
                                             reason="the shadow file could not be read")]},
        "logging": {"audit": {"running": None, "rules": None, "reason": "auditctl: not root"},
                    "journald": {"persistent": None, "storage": "sometimes"}, "forwarding": {"forwarded": None}},
    },
}  # fmt: skip
"""Per verdict and collector, evidence on which every shipped rule of that collector has that
verdict (a rule whose failing case needs facts its siblings would not fail on is listed below)."""
# with one UPS present the ups_count rule passes; its failing case is ups_count 0 (above)
NOT_THIS = {("failing", "power-ups-present")}


def _record(observed: Mapping[str, Any], status: str = "complete") -> Dict[str, Any]:
    gaps = (
        [{"what": "owner of 1 socket", "reason": "not root: cannot read /proc/4121/fd"}] if status != "complete" else []
    )
    return {"collected_at": at(minutes=1), "status": status, "observed": dict(observed), "gaps": gaps,
            "error": "timed out after 10 s" if status == "error" else None}  # fmt: skip


def _clean(sentence: str, what: str) -> None:
    assert sentence.strip(), f"{what}: an empty sentence"
    found = OPERATOR_WORDS.search(sentence)
    assert found is None, f"{what}: operator words {found.group(0)!r} in {sentence!r}"


POLICY = parse_policy(SHIPPED.read_text(), str(SHIPPED))


@pytest.mark.parametrize("verdict", ["passing", "failing", "unknown"])
@pytest.mark.parametrize("rule", POLICY.rules, ids=lambda r: r.id)
def test_every_shipped_rule_says_what_it_found(rule: Any, verdict: str) -> None:
    observed = EVIDENCE[verdict][rule.collector]
    if (verdict, rule.id) in NOT_THIS:
        observed = dict(observed, ups=[], ups_count=0)
    result = evaluate(rule, _record(observed), NOW)
    assert result.verdict.value == verdict, (rule.id, result.message, result.detail)
    _clean(result.message, f"{rule.id} {verdict}")
    assert result.rule.template(verdict), f"{rule.id} has no {verdict} sentence"
    if verdict == "failing":
        _clean(resolved(rule, result.observed, NOW), f"{rule.id} resolved")
        assert rule.template("resolved"), f"{rule.id} has no resolved sentence"


@pytest.mark.parametrize("status", ["error", "partial", "not_present"])
@pytest.mark.parametrize("rule", POLICY.rules, ids=lambda r: r.id)
def test_every_shipped_rule_says_why_it_cannot_tell(rule: Any, status: str) -> None:
    result = evaluate(rule, _record(EVIDENCE["unknown"][rule.collector], status), NOW)
    _clean(result.message, f"{rule.id} {status}")
    if status != "not_present":
        assert result.verdict is Verdict.UNKNOWN
        assert "timed out after 10 s" in result.message if status == "error" else "not root" in result.message


def test_the_sentences_a_sysadmin_reads_at_3_am() -> None:
    failing = {r.id: evaluate(r, _record(EVIDENCE["failing"][r.collector]), NOW) for r in POLICY.rules}
    assert failing["power-ups-on-line"].message == (
        "UPS acc@ups1:3493 is on battery (OB DISCHRG LB RB), 29 min runtime left, battery at 18 %"
    )
    assert failing["disk-mounts-encrypted"].message == "/ (ext4 on vda) is not on an encrypted layer"
    assert failing["backup-recent"].message == (
        "last restic backup X of sftp:nas01:/srv/restic was 10.0 days ago (limit 26 h)"
    )
    assert failing["ports-no-plaintext-remote"].message == (
        "telnetd (pid 4121) listens on 0.0.0.0:23/tcp (telnet, plaintext)"
    )
    assert failing["ports-no-exposed-database"].message.startswith("postgres (pid 9) listens on [::]:5432/tcp")
    assert failing["av-running"].message == "ClamAV is installed but not running"
    assert failing["service-remote-access-closed"].message == (
        "Xvnc (pid 812) listens on 0.0.0.0:5901/tcp: vnc service open outside a service visit"
    )
    assert failing["service-vendor-accounts-locked"].message == (
        "vendor account hpsupport is not locked: a password can log in"
    )
    assert failing["time-synchronised"].message == (
        "the clock is not synchronised (chrony): chronyd has no selectable source now (2 configured)"
    )
    assert resolved(failing["power-ups-on-line"].rule, failing["power-ups-on-line"].observed, NOW) == (
        "UPS acc@ups1:3493 back on line power"
    )
    # M05 and M09 (issue #18): what was found, and what the resolve notice says of it
    assert failing["accounts-no-extra-uid0"].message == "account toor has user id 0, the powers of root (shell /bin/sh)"
    assert failing["sshd-no-root-password-login"].message == (
        "sshd lets root log in with a password (global: PermitRootLogin yes)"
    )
    changed = failing["files-unchanged"]
    assert changed.message == "/etc/sudoers was modified at 2026-12-07 02:00 UTC by vi (login u1)"
    # the next report without a change resolves it: nobody accepted or undid anything
    assert resolved(changed.rule, changed.observed, NOW) == "/etc/sudoers has not changed again since it was modified"
    chmod = {"path": "/etc/shadow", "change": "attributes", "owner": "root", "group": "shadow", "mode": "0640"}
    chmodded = evaluate(changed.rule, _record({"changes": [chmod], "changes_total": 1}), NOW)
    assert chmodded.message == "/etc/shadow was given a new owner, group or mode, now root:shadow mode 0640"
    assert resolved(changed.rule, chmodded.observed, NOW) == (
        "/etc/shadow has not changed again since it was given a new owner, group or mode"
    )
    unknown = evaluate(POLICY.rules[1], _record(EVIDENCE["unknown"]["power"], "partial"), NOW)
    assert unknown.message == (
        "cannot tell whether UPS acc@ups1:3493 is on line power: not reported"
        " (not seen: owner of 1 socket: not root: cannot read /proc/4121/fd)"
    )


def test_a_custom_rule_without_sentences_still_reads() -> None:
    policy = parse_policy(
        """
rules:
  - id: my-ups
    title: Every UPS is on line power
    controls: [M01]
    severity: high
    collector: power
    check: {path: ups, expect: all, test: {field: on_line, op: is_true}, show: [name, status_raw]}
  - id: my-client
    title: A shutdown client is configured
    controls: [M01]
    severity: low
    collector: power
    check: {path: shutdown_client_configured, op: is_true}
""",
        "custom.yaml",
    )
    said = {r.id: evaluate(r, _record(EVIDENCE["failing"]["power"]), NOW).message for r in policy.rules}
    assert said == {
        "my-ups": "Every UPS is on line power: not met by acc, OB DISCHRG LB RB",
        "my-client": "A shutdown client is configured: not met (observed: no)",
    }
    for rule in policy.rules:
        for verdict in ("passing", "unknown"):
            _clean(evaluate(rule, _record(EVIDENCE[verdict]["power"]), NOW).message, f"{rule.id} {verdict}")
        assert resolved(rule, [], NOW) == f"{rule.title}: met again"


@pytest.mark.parametrize(
    ("template", "item", "said"),
    [
        ("{name} has {runtime_s|minutes} left", {"name": "a", "runtime_s": 1740}, "a has 29 min left"),
        ("{name}[, {runtime_s|minutes} left]", {"name": "a", "runtime_s": None}, "a"),
        ("{name}[, {runtime_s|minutes} left]", {"name": "a"}, "a"),
        ("{process.name?a process not seen} on {address|addr}", {"address": "::"}, "a process not seen on [::]"),
        ("{process.name} on {port}", {"process.name": "sshd", "port": 22}, "sshd on 22"),
        ("{process.name}", {"process": {"name": "sshd"}}, "sshd"),
        ("{count|plural:socket}, {value|plural:UPS:UPS}", 2, "1 socket, 2 UPS"),
        ("{t|ago}, {t|date}", {"t": "2026-11-27T03:00:00Z"}, "10.0 days ago, 2026-11-27 03:00 UTC"),
        ("{t|ago}", {"t": "2026-12-07T05:00:00Z"}, "2.0 h in the future"),
        ("{d|date}", {"d": "2026-09-01"}, "2026-09-01"),
        ("{x} and {y|pct}", {"x": True, "y": 95.0}, "yes and 95 %"),
        ("{missing}", {}, "unknown"),
        ("{{literal}} [[x]]", {}, "{literal} [x]"),
        ("{tags|list}", {"tags": ["a", None, "b"]}, "a, b"),
        ("{limit}", {}, "26 h"),
        ("{c|change} / {d|change}", {"c": "attributes", "d": "deleted"}, "given a new owner, group or mode / deleted"),
    ],
)
def test_templates(template: str, item: Any, said: str) -> None:
    assert render(parse_template(template), item, Context(NOW, limit="26 h", count=1)) == said


@pytest.mark.parametrize(
    ("say", "error"),
    [
        ("{failing: '{name'}", "unclosed {"),
        ("{failing: '{name|minuets}'}", "unknown filter 'minuets'"),
        ("{failing: '[a [b]]'}", "do not nest"),
        ("{failing: 'a ]'}", "] without ["),
        ("{failing: '[{name}'}", "unclosed ["),
        ("{failing: ''}", "expected a non-empty sentence"),
        ("{failing: '{uptime}'}", "{uptime} is not among the fields shown (name, status_raw)"),
        ("{failing: '{name|plural}'}", "only plural takes a word"),
        ("{falling: '{name}'}", "unknown key (known: failing, passing, unknown, resolved, empty)"),
        ("'just text'", "expected a mapping of failing"),
    ],
)
def test_a_bad_sentence_is_refused_with_the_rule_and_the_reason(say: str, error: str) -> None:
    text = f"""
rules:
  - id: my-ups
    title: t
    controls: [M01]
    severity: high
    collector: power
    say: {say}
    check: {{path: ups, expect: all, test: {{field: on_line, op: is_true}}, show: [name, status_raw]}}
"""
    with pytest.raises(PolicyError, match=re.escape(error)) as caught:
        parse_policy(text, "custom.yaml")
    assert str(caught.value).startswith("custom.yaml: rule 'my-ups'.say")


@pytest.mark.parametrize(
    ("depends", "error"),
    [
        ("[nope]", "rule 'b'.depends_on: no rule 'nope' in this policy"),
        ("[b]", "rule 'b'.depends_on: a rule cannot depend on itself"),
        ("[a]", "a cycle leads back to it"),
    ],
)
def test_dependencies_name_existing_rules_without_cycles(depends: str, error: str) -> None:
    text = f"""
rules:
  - id: a
    title: t
    controls: [M01]
    severity: high
    collector: power
    depends_on: [b]
    check: {{path: ups_count, op: ge, value: 1}}
  - id: b
    title: t
    controls: [M01]
    severity: high
    collector: power
    depends_on: {depends}
    check: {{path: ups_count, op: ge, value: 1}}
"""
    with pytest.raises(PolicyError, match=re.escape(error)):
        parse_policy(text, "custom.yaml")


def test_the_shipped_policy_declares_the_obvious_causes() -> None:
    causes = {r.id: r.depends_on for r in POLICY.rules}
    assert causes["av-signatures-fresh"] == ("av-running",)
    assert causes["av-real-time"] == ("av-running",)
    for rule in ("power-ups-on-line", "power-battery-not-low", "power-self-test-passed", "power-self-test-recent"):
        assert causes[rule] == ("power-ups-present",)
    assert causes["backup-recent"] == ("backup-readable",)
    assert causes["time-offset-small"] == ("time-synchronised",)
