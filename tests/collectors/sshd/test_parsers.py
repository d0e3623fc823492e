"""The sshd parsers on captured Debian 12 output, on absent and malformed input, and on random
and mutated input (hypothesis): they never raise, they count what they could not read."""

from __future__ import annotations

from typing import Dict, List

from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.sshd import facts
from collectors.sshd.crypto import not_modern, resolve_list
from collectors.sshd.parse_config import directives, fold
from collectors.sshd.parse_sshd_t import parse_sshd_t
from tests.conftest import FIXTURES

FIX = FIXTURES / "sshd"
SSHD_T = (FIX / "sshd-T_debian-12_openssh-9.2p1_default.txt").read_text()
CONFIG = (FIX / "sshd_config_debian-12_openssh-9.2p1_default").read_text()


def test_debian_12_default_sshd_t() -> None:
    parsed = parse_sshd_t(SSHD_T)
    assert parsed.bad_lines == 0
    assumed: List[str] = []
    auth = facts.authentication(parsed.values, assumed, False)
    assert assumed == []
    # Debian's file turns keyboard-interactive off and PAM on; passwords stay allowed (the default)
    assert auth["password_authentication"] is True and auth["kbd_interactive_authentication"] is False
    assert auth["use_pam"] is True and auth["password_login_possible"] is True
    assert auth["permit_root_login"] == "prohibit-password"  # printed as "without-password" by 9.2
    offered = facts.algorithms(parsed.values, False, assumed)
    weak = {a["name"] for a in not_modern(offered)}
    assert weak == {"umac-64-etm@openssh.com", "hmac-sha1-etm@openssh.com", "umac-64@openssh.com", "hmac-sha1"}
    assert facts.listen(parsed.values, False) == [{"address": "::", "port": 22}, {"address": "0.0.0.0", "port": 22}]
    assert facts.principals(parsed.values)["allow_users"] is None


def test_debian_12_default_file_matches_its_sshd_t() -> None:
    found, problems = directives(CONFIG, "/etc/ssh/sshd_config")
    assert problems == []
    folded = fold(found)
    assert folded.values["kbdinteractiveauthentication"] == ["no"]
    assert folded.values["acceptenv"] == ["LANG", "LC_*"]
    assert folded.matches == []
    assumed: List[str] = []
    auth = facts.authentication(folded.values, assumed, True)
    real = facts.authentication(parse_sshd_t(SSHD_T).values, [], False)
    assert auth == real
    assert "passwordauthentication" in assumed and "kbdinteractiveauthentication" not in assumed


def test_absent_and_malformed_input() -> None:
    assert parse_sshd_t("").values == {}
    bad = parse_sshd_t("port 22\nThis Is Not\n\x00\x01 junk\n")
    assert bad.values == {"port": ["22"]} and bad.bad_lines == 2
    found, problems = directives('PermitRootLogin "yes\nMatch User bob\n  X11Forwarding=yes\n!!! 1\n', "f")
    assert problems == ["f:1: No closing quotation", "f:4: not a keyword: '!!!'"]
    folded = fold(found)
    assert folded.matches[0].criteria == "User bob" and folded.matches[0].values == {"x11forwarding": ["yes"]}
    # "²" passes str.isdigit() but not int(): not a port, the default stands
    assert facts.listen({"port": ["²"], "listenaddress": ["[::1]:²"]}, True) == [{"address": "::1", "port": 22}]


def test_list_modifiers() -> None:
    assert resolve_list("ciphers", "aes256-ctr")[:1] == ["aes256-ctr"]
    assert resolve_list("ciphers", "+aes128-cbc")[-1] == "aes128-cbc"
    assert "chacha20-poly1305@openssh.com" not in resolve_list("ciphers", "-chacha20-poly1305@openssh.com")
    assert resolve_list("macs", "^hmac-sha1")[0] == "hmac-sha1"


def _facts_of(values: Dict[str, List[str]]) -> None:
    assumed: List[str] = []
    for fill in (True, False):
        facts.authentication(values, assumed, fill)
        offered = facts.algorithms(values, fill, assumed)
        not_modern(offered)
        facts.listen(values, fill)
        facts.principals(values)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=400))
def test_random_text_never_raises(text: str) -> None:
    parsed = parse_sshd_t(text)
    _facts_of(parsed.values)
    found, _problems = directives(text, "random")
    _facts_of(fold(found).values)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_captures_never_raise(data: st.DataObject) -> None:
    for capture in (SSHD_T, CONFIG):
        lines = capture.splitlines()
        index = data.draw(st.integers(0, len(lines) - 1))
        junk = data.draw(st.text(max_size=60))
        mutated = [*lines[:index], lines[index][: data.draw(st.integers(0, 40))] + junk, *lines[index + 1 :]]
        text = "\n".join(mutated)
        _facts_of(parse_sshd_t(text).values)
        _facts_of(fold(directives(text, "mutated")[0]).values)
