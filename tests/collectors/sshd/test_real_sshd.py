"""The real ``sshd -T`` (OpenSSH from Debian) over test configurations, and the file parser
over the same files: both must agree on what a user would rely on."""

from __future__ import annotations

from pathlib import Path

from collectors.sshd import SPEC
from evidence.model import Status
from tests.collectors.sshd.helpers import context, make_root, sshd_binary
from tests.evidence.shipped import judge_shipped

HARDENED = """HostKey {key}
Include {root}/etc/ssh/sshd_config.d/*.conf
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com
MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com
KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org
ListenAddress 192.0.2.7:2222
AllowUsers alice bob@198.51.100.0/24
AllowGroups sshusers
"""


def test_hardened_configuration_passes_every_shipped_rule(tmp_path: Path) -> None:
    binary = sshd_binary()
    root = make_root(tmp_path, HARDENED)
    outcome = SPEC.collect(context(root, sshd_binary=binary))
    assert outcome.status is Status.COMPLETE, outcome.gaps
    seen = outcome.observed
    assert seen["source"] == "sshd -T" and seen["source_note"] is None
    assert seen["password_authentication"] is False and seen["kbd_interactive_authentication"] is False
    assert seen["permit_root_login"] == "no" and seen["password_login_possible"] is False
    assert seen["not_modern"] == []
    assert seen["listen"] == [{"address": "192.0.2.7", "port": 2222}]
    assert seen["allow_users"] == [{"user": "alice", "from": None}, {"user": "bob", "from": "198.51.100.0/24"}]
    assert seen["allow_groups"] == ["sshusers"]
    assert set(judge_shipped("sshd", outcome).values()) == {"passing"}


def test_root_login_in_a_drop_in_and_in_a_match_block_fail(tmp_path: Path) -> None:
    binary = sshd_binary()
    # The drop-in comes first (Include at the top, as Debian's file has it): its value wins.
    main = "Include {root}/etc/ssh/sshd_config.d/*.conf\nHostKey {key}\nPermitRootLogin no\nPasswordAuthentication no\n"
    root = make_root(tmp_path, main, {"10-root.conf": "PermitRootLogin yes\n"})
    outcome = SPEC.collect(context(root, sshd_binary=binary))
    assert outcome.observed["permit_root_login"] == "yes"
    assert judge_shipped("sshd", outcome)["sshd-no-root-password-login"] == "failing"

    match = "HostKey {key}\nPermitRootLogin no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
    match += "Match Address 203.0.113.0/24\n  PermitRootLogin yes\n  PasswordAuthentication yes\n"
    root = make_root(tmp_path / "m", match)
    outcome = SPEC.collect(context(root, sshd_binary=binary))
    contexts = {c["context"]: c for c in outcome.observed["contexts"]}
    assert contexts["global"]["permit_root_login"] == "no"
    # the default match context (root from 203.0.113.10) is inside the block: sshd -C says yes
    assert contexts["user root from 203.0.113.10 (unknown)"]["permit_root_login"] == "yes"
    assert contexts["user root from 203.0.113.10 (unknown)"]["password_authentication"] is True
    verdicts = judge_shipped("sshd", outcome)
    assert verdicts["sshd-no-root-password-login"] == "failing"
    assert verdicts["sshd-no-password-login"] == "failing"


def test_a_match_block_no_configured_connection_falls_in_is_judged_too(tmp_path: Path) -> None:
    """sshd -T -C is asked for root from 203.0.113.10, outside the block: the block itself, as if
    it matched, still fails the rule, and says where it is."""
    binary = sshd_binary()
    main = "HostKey {key}\nPermitRootLogin no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
    main += "Match Address 10.0.0.0/8\n  PasswordAuthentication yes\n"
    root = make_root(tmp_path, main)
    outcome = SPEC.collect(context(root, sshd_binary=binary))
    assert outcome.observed["source"] == "sshd -T"
    contexts = {c["context"]: c for c in outcome.observed["contexts"]}
    assert contexts["user root from 203.0.113.10 (unknown)"]["password_login_possible"] is False
    block = contexts[f"Match Address 10.0.0.0/8 ({root}/etc/ssh/sshd_config:5)"]
    assert (block["password_authentication"], block["permit_root_login"]) == (True, "no")
    verdicts = judge_shipped("sshd", outcome)
    assert verdicts["sshd-no-password-login"] == "failing"
    assert verdicts["sshd-no-root-password-login"] == "passing"


def test_the_file_parser_agrees_with_sshd_t(tmp_path: Path) -> None:
    """The same files parsed (as when sshd -T cannot answer): the facts rules read are equal."""
    binary = sshd_binary()
    main = HARDENED + "Match User carol\n  PasswordAuthentication yes\n"
    root = make_root(tmp_path, main, {"50-weak.conf": "Ciphers +aes128-cbc\nPermitEmptyPasswords yes\n"})
    real = SPEC.collect(context(root, sshd_binary=binary)).observed
    parsed = SPEC.collect(context(root, use_sshd_t=False)).observed
    assert parsed["source"] == "files" and "use_sshd_t is off" in parsed["source_note"]
    assert real["source"] == "sshd -T"
    for key in ("password_authentication", "permit_root_login", "permit_empty_passwords", "ciphers", "listen"):
        assert parsed[key] == real[key], key
    # the drop-in is included before the main file's Ciphers line, so its "+aes128-cbc" wins
    assert real["not_modern"] == parsed["not_modern"] == [{"kind": "cipher", "name": "aes128-cbc"}]
    assert real["permit_empty_passwords"] is True
    # the Match block: sshd -C evaluates configured connections; the parser lists the block itself
    assert [c["context"].split(" (")[0] for c in parsed["contexts"]] == ["global", "Match User carol"]
    assert parsed["contexts"][1]["password_authentication"] is True


def test_missing_sshd_falls_back_to_the_files_and_says_why(tmp_path: Path) -> None:
    root = make_root(tmp_path, "PermitRootLogin yes\nPasswordAuthentication no\n")
    outcome = SPEC.collect(context(root, sshd_binary=str(tmp_path / "no-sshd")))
    seen = outcome.observed
    assert seen["source"] == "files"
    assert seen["source_note"] == "sshd -T did not answer (no-sshd: not found); the files were parsed instead"
    assert seen["permit_root_login"] == "yes" and seen["password_authentication"] is False
    assert "kbdinteractiveauthentication" in seen["defaults_assumed"]


def test_no_sshd_at_all_is_not_present(tmp_path: Path) -> None:
    outcome = SPEC.collect(context(tmp_path, sshd_binary=str(tmp_path / "no-sshd")))
    assert outcome.status is Status.NOT_PRESENT
    assert "does not exist and sshd is not installed" in outcome.gaps[0].reason


def test_a_configuration_sshd_refuses_is_parsed_with_the_reason(tmp_path: Path) -> None:
    binary = sshd_binary()
    root = make_root(tmp_path, "HostKey {key}\nPermitRootLogin yes\nNoSuchOption 1\n")
    seen = SPEC.collect(context(root, sshd_binary=binary)).observed
    assert seen["source"] == "files"
    assert "Bad configuration option: NoSuchOption" in seen["source_note"], seen["source_note"]
    assert seen["permit_root_login"] == "yes"


def test_an_unreadable_configuration_leaves_every_rule_unknown(tmp_path: Path) -> None:
    """No sshd to ask and the main file unreadable: nothing passes, and it is not 'not present'."""
    root = tmp_path / "root"
    (root / "etc" / "ssh" / "sshd_config").mkdir(parents=True)  # reading it fails as for a closed file
    outcome = SPEC.collect(context(root, sshd_binary=str(tmp_path / "no-sshd")))
    assert outcome.status is Status.PARTIAL and outcome.observed["source"] is None
    assert outcome.gaps[0].what.startswith("sshd configuration")
    assert set(judge_shipped("sshd", outcome).values()) == {"unknown"}
