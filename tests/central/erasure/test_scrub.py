"""What erasure removes (M08): usernames, home paths and command lines, in evidence and in what the
centre derived from it; numbers and unrelated words stay."""

from __future__ import annotations

import json

from central.erasure.scrub import MARKER, Scrubber

BODY = {
    "type": "report",
    "agent_id": "agent-0001",
    "evidence": [
        {
            "collector": "accounts",
            "observed": {
                "accounts": [{"user": "anna", "uid": 1000, "home": "/home/anna", "groups": ["anna", "sudo"]}],
                "files": [{"path": "/home/anna/.ssh/authorized_keys", "owner": "anna"}],
                "process": {"name": "sshd", "cmdline": ["sshd:", "anna@pts/0"], "auid": 1000},
            },
        }
    ],
}


def test_a_report_loses_usernames_home_paths_and_command_lines_and_keeps_the_rest() -> None:
    scrubber = Scrubber()
    erased = json.loads(scrubber.report(json.dumps(BODY).encode()))
    observed = erased["evidence"][0]["observed"]
    assert observed["accounts"][0] == {"user": MARKER, "uid": 1000, "home": MARKER, "groups": [MARKER, "sudo"]}
    assert observed["files"][0] == {"path": f"/home/{MARKER}/.ssh/authorized_keys", "owner": MARKER}
    assert observed["process"] == {"name": "sshd", "cmdline": [MARKER, MARKER], "auid": MARKER}
    assert erased["agent_id"] == "agent-0001" and erased["evidence"][0]["collector"] == "accounts"
    assert "anna" in scrubber.removed and "1000" in scrubber.removed


def test_the_same_names_leave_sentences_but_numbers_and_longer_words_stay() -> None:
    scrubber = Scrubber()
    scrubber.report(json.dumps(BODY).encode())
    said = scrubber.in_text("account anna has user id 1000; annabel and /home/anna/x stay apart")
    assert said == f"account {MARKER} has user id 1000; annabel and {MARKER}/x stay apart"
    assert scrubber.in_json({"accounts": ["anna", "root"], "user": "bob"}) == {
        "accounts": [MARKER, "root"],
        "user": MARKER,
    }


def test_erasing_twice_changes_nothing_more() -> None:
    once = Scrubber().report(json.dumps(BODY).encode())
    assert Scrubber().report(once) == once
