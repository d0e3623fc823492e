"""The accounts parsers on Debian 12's sudoers, on hand-made edge cases, and on random and mutated
input (hypothesis): they never raise; what they cannot read is counted or reported."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.accounts import parse_keys, parse_logins, parse_passwd
from collectors.accounts.parse_sudoers import no_password, parse_sudoers
from collectors.accounts.report import Inputs, assemble
from tests.conftest import FIXTURES

SUDOERS = (FIXTURES / "accounts" / "sudoers_debian-12_sudo-1.9.13p3_default").read_text()
KEYS = (FIXTURES / "accounts" / "authorized_keys_debian-12_openssh-9.2p1_rsa-ecdsa-options").read_text()
PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\nanna:x:1000:1000::/home/anna:/bin/bash\nsvc:x:999:999::/srv:/usr/sbin/nologin\n"
)
SHADOW = "root:*:20000:0:99999:7:::\nanna::20000:0:99999:7::20100:\n"
GROUP = "root:x:0:\nsudo:x:27:anna\nanna:x:1000:\n"
NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def test_debian_12_sudoers() -> None:
    parsed = parse_sudoers(SUDOERS, "/etc/sudoers")
    assert parsed.problems == []
    assert parsed.includes == [("includedir", "/etc/sudoers.d")]
    assert [(r["user"], r["group"], r["runas"], r["all_commands"], r["nopasswd"]) for r in parsed.rules] == [
        ("root", None, "ALL:ALL", True, False),
        (None, "sudo", "ALL:ALL", True, False),
    ]


def test_sudoers_aliases_continuations_tags_and_comments() -> None:
    text = (
        "User_Alias ADMINS = anna, bertil\nCmnd_Alias EVERYTHING = ALL\n"
        "ADMINS ALL = (root) NOPASSWD: EVERYTHING  # admins\n"
        "deploy ALL=(www-data) NOPASSWD: /usr/bin/systemctl restart app, \\\n   /usr/bin/systemctl reload app\n"
        "#1001 ALL=(ALL) ALL\nnot a rule\n#include /etc/sudoers.local\n"
    )
    parsed = parse_sudoers(text, "s")
    rows = [(r["user"], r.get("uid"), r["all_commands"], r["nopasswd"], r["source"]) for r in parsed.rules]
    assert rows == [
        ("anna", None, True, True, "s:3"),
        ("bertil", None, True, True, "s:3"),
        ("deploy", None, False, True, "s:4"),
        (None, "1001", True, False, "s:6"),
    ]
    assert parsed.problems == ["s:7: not a sudoers rule (no '=')"]
    assert parsed.includes == [("include", "/etc/sudoers.local")]


def test_defaults_authenticate_bindings() -> None:
    text = (
        "User_Alias OPS = anna, bertil\nDefaults:OPS !authenticate\nDefaults:ALL authenticate\n"
        "Defaults:%deploy !authenticate\nDefaults@web1 !authenticate\nDefaults env_reset, !authenticate\n"
    )
    assert parse_sudoers(text, "s").authenticate == [
        ("anna", False, "s:2"),
        ("bertil", False, "s:2"),
        ("", True, "s:3"),
        ("%deploy", False, "s:4"),
        ("", False, "s:5"),  # a host binding: this host may be it
        ("", False, "s:6"),
    ]


def test_passwd_shadow_group_and_password_states() -> None:
    entries, bad = parse_passwd.parse_passwd(PASSWD + "broken line\nx:y:notanumber:0::/:/bin/sh\n")
    assert [e.user for e in entries] == ["root", "anna", "svc"] and bad == 2
    shadow, _ = parse_passwd.parse_shadow(SHADOW)
    groups, _ = parse_passwd.parse_group(GROUP)
    assert parse_passwd.password_state("x", shadow["anna"], True) == "empty"
    assert parse_passwd.password_state("x", shadow["root"], True) == "disabled"
    assert parse_passwd.password_state("x", None, True) == "missing"
    assert parse_passwd.password_state("x", None, False) is None
    assert parse_passwd.password_state("", None, False) == "empty"
    assert parse_passwd.password_state("!$6$a$b", None, False) == "locked"
    observed = assemble(
        Inputs(entries, shadow, groups, 1000, [], {}, {}, True, True, NOW, 90, ["sudo", "wheel", "admin"])
    )
    anna = observed["accounts"][1]
    assert (anna["password"], anna["expires"], anna["expired"], anna["admin_groups"]) == (
        "empty",
        "2025-01-12",
        True,
        ["sudo"],
    )
    assert anna["dormant"] is False  # expired: it cannot log in
    assert [a["user"] for a in observed["accounts"]] == ["root", "anna"]  # svc has no login shell


def test_authorized_keys_options_and_damaged_lines() -> None:
    text = (
        'command="/usr/bin/backup --to \\"x y\\"",from="10.0.0.0/8",no-pty '
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDf comment\n"
        "ssh-rsa not-base64!!\n"
        "garbage\n"
        "# a comment\n"
    )
    keys, bad = parse_keys.parse_authorized_keys(text)
    assert bad == 1
    assert keys[0] == {
        "type": "ssh-ed25519",
        "bits": 256,
        "options": ["command", "from", "no-pty"],
        "from": ["10.0.0.0/8"],
    }
    assert keys[1] == {"type": "ssh-rsa", "bits": None, "options": [], "from": None}


def test_captured_authorized_keys() -> None:
    keys, bad = parse_keys.parse_authorized_keys(KEYS)
    assert bad == 0
    assert keys == [
        {
            "type": "ssh-rsa",
            "bits": 2048,
            "options": ["from", "command", "no-pty", "no-port-forwarding"],
            "from": ["192.0.2.0/24"],
        },
        {"type": "ecdsa-sha2-nistp384", "bits": 384, "options": [], "from": None},
    ]


def test_login_records() -> None:
    assert parse_logins.lastlog_time(b"") is None
    assert parse_logins.lastlog_time(b"\x00" * 292) is None
    assert parse_logins.wtmp_last_logins(b"\x07" + b"\x00" * 383) == ({}, 1)  # USER_PROCESS without a user


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=500))
def test_random_text_never_raises(text: str) -> None:
    entries, _ = parse_passwd.parse_passwd(text)
    shadow, _ = parse_passwd.parse_shadow(text)
    groups, _ = parse_passwd.parse_group(text)
    parse_passwd.uid_min(text)
    sudoers = parse_sudoers(text, "random")
    no_password(sudoers.rules, sudoers.authenticate)
    parse_keys.parse_authorized_keys(text)
    assemble(Inputs(entries, shadow, groups, 1000, [], {}, {}, True, False, NOW, 90, ["sudo"]))


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(data: bytes) -> None:
    parse_logins.wtmp_last_logins(data)
    parse_logins.lastlog_time(data[:292])


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_captures_never_raise(data: st.DataObject) -> None:
    for capture in (SUDOERS, PASSWD, SHADOW, GROUP, KEYS):
        index = data.draw(st.integers(0, len(capture)))
        text = capture[:index] + data.draw(st.text(max_size=40)) + capture[index + data.draw(st.integers(0, 20)) :]
        parse_keys.parse_authorized_keys(text)  # a mutated key blob: its size is None, never an error
        entries, _ = parse_passwd.parse_passwd(text)
        shadow, _ = parse_passwd.parse_shadow(text)
        groups, _ = parse_passwd.parse_group(text)
        sudoers = parse_sudoers(text, "mutated")
        no_password(sudoers.rules, sudoers.authenticate)
        assemble(Inputs(entries, shadow, groups, 1000, [], {}, {}, True, True, NOW, 90, ["sudo"]))
