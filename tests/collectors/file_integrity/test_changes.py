"""Real files under a test root changed between runs: what the collector reports, and what the
shipped rule says of it."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any, Dict

from collectors.base import Context
from collectors.file_integrity import SPEC
from collectors.file_integrity.store_baseline import NAME
from collectors.settings import validate
from evidence.model import Status
from tests.conftest import FIXTURES
from tests.evidence.shipped import judge_shipped

FIX = FIXTURES / "file_integrity"


def make_root(tmp: Path) -> Path:
    root = tmp / "root"
    for folder in ("etc/sudoers.d", "etc/cron.d", "etc/ssh", "var/log/audit"):
        (root / folder).mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\nanna:x:1000:1000::/home/anna:/bin/bash\n")
    (root / "etc/group").write_text("root:x:0:\nshadow:x:42:\nanna:x:1000:\n")
    (root / "etc/shadow").write_text("root:*:20000:0:99999:7:::\n")
    (root / "etc/ssh/sshd_config").write_text("PermitRootLogin no\n")
    (root / "etc/cron.d/backup").write_text("0 3 * * * root /usr/local/bin/backup\n")
    return root


def context(root: Path, state: Path, keep: bool = True, **settings: Any) -> Context:
    settings.setdefault(
        "paths", ["/etc/passwd", "/etc/shadow", "/etc/sudoers.d", "/etc/ssh/sshd_config", "/etc/cron.d"]
    )
    return Context(root=root, settings=validate(settings, SPEC.settings, "fi"), state_dir=state, keep_state=keep)


def _by_path(observed: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    return {c["path"]: c for c in observed["changes"]}


def test_changes_between_runs_are_reported_once(tmp_path: Path) -> None:
    root, state = make_root(tmp_path), tmp_path / "state"
    first = SPEC.collect(context(root, state))
    assert first.status is Status.COMPLETE, first.gaps
    assert first.observed["baseline_created"] is True and first.observed["changes"] == []
    assert first.observed["files"] == 4 and (state / NAME).exists()
    assert SPEC.summary(first.observed) == "4 files watched, 0 changed (baseline made now)"
    assert judge_shipped("file_integrity", first)["files-unchanged"] == "passing"

    (root / "etc/passwd").write_text((root / "etc/passwd").read_text() + "toor:x:0:0::/root:/bin/bash\n")
    os.chmod(root / "etc/shadow", 0o640)
    os.chown(root / "etc/shadow", 0, 42)
    (root / "etc/sudoers.d/90-anna").write_text("anna ALL=(ALL) NOPASSWD: ALL\n")
    os.chown(root / "etc/sudoers.d/90-anna", 1000, 1000)
    (root / "etc/cron.d/backup").unlink()
    # an editor's way: a new file with the same content renamed over the old one is no change
    copy = root / "etc/ssh/sshd_config.tmp"
    shutil.copy2(root / "etc/ssh/sshd_config", copy)
    os.replace(copy, root / "etc/ssh/sshd_config")

    second = SPEC.collect(context(root, state))
    changes = _by_path(second.observed)
    assert sorted(changes) == ["/etc/cron.d/backup", "/etc/passwd", "/etc/shadow", "/etc/sudoers.d/90-anna"]
    passwd = changes["/etc/passwd"]
    assert passwd["change"] == "modified"
    assert passwd["sha256"] == hashlib.sha256((root / "etc/passwd").read_bytes()).hexdigest()
    assert passwd["previous_sha256"] and passwd["previous_sha256"] != passwd["sha256"]
    assert (passwd["owner"], passwd["mode"]) == ("root", "0644")
    assert passwd["changed_at"].endswith("Z")
    assert changes["/etc/shadow"]["change"] == "attributes"
    shadow = changes["/etc/shadow"]
    assert (shadow["mode"], shadow["previous_mode"], shadow["group"]) == ("0640", "0644", "shadow")
    assert shadow["sha256"] == shadow["previous_sha256"]
    assert changes["/etc/sudoers.d/90-anna"]["change"] == "created"
    assert (changes["/etc/sudoers.d/90-anna"]["owner"], changes["/etc/sudoers.d/90-anna"]["group"]) == ("anna", "anna")
    assert changes["/etc/cron.d/backup"]["change"] == "deleted" and changes["/etc/cron.d/backup"]["sha256"] is None
    # no audit log in this root: who did it is unknown, and the evidence says why
    assert passwd["process"] is None and "audit.log does not exist" in passwd["actor_note"]
    assert second.status is Status.PARTIAL and second.gaps[0].what == "who made the changes"
    assert SPEC.summary(second.observed) == "4 files watched, 4 changed"
    verdict = judge_shipped("file_integrity", second)
    assert verdict["files-unchanged"] == "failing"

    third = SPEC.collect(context(root, state))
    assert third.observed["changes"] == [] and third.observed["changes_total"] == 0
    assert judge_shipped("file_integrity", third)["files-unchanged"] == "passing"


def test_a_storm_is_summarised(tmp_path: Path) -> None:
    root, state = make_root(tmp_path), tmp_path / "state"
    SPEC.collect(context(root, state))
    for i in range(150):
        (root / f"etc/sudoers.d/drop-{i:03d}").write_text(f"# {i}\n")
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    seen = SPEC.collect(context(root, state, max_listed=10)).observed
    assert seen["changes_total"] == 151 and len(seen["changes"]) == 10 and seen["summarised"] is True
    assert seen["summary"] == {
        "by_change": {"created": 150, "modified": 1},
        "by_directory": {"/etc": 1, "/etc/sudoers.d": 150},
    }


def test_the_audit_log_names_the_actor_when_it_can(tmp_path: Path) -> None:
    root, state = make_root(tmp_path), tmp_path / "state"
    SPEC.collect(context(root, state))
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    audit = root / "var/log/audit/audit.log"
    shutil.copy(FIX / "audit-log_auditbeat-8.0.0_kibana-siem-mock_openat-etc-passwd.log", audit)
    change = SPEC.collect(context(root, state)).observed["changes"][0]
    assert change["process"] == {
        "name": "auditbeat",
        "exe": "/root/go/src/github.com/elastic/beats/x-pack/auditbeat/auditbeat",
        "pid": 15990,
    }
    assert (change["user"], change["login"], change["audit_at"]) == ("root", None, "2019-03-29T19:01:23Z")
    assert change["actor_note"] == "no login session (a service or timer)"
    # a log whose tail was cut between an event's lines: the path is there, the process is not
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    shutil.copy(FIX / "audit-log_unnamed-distro_auditd_tail-cut-mid-event.log", audit)
    change = SPEC.collect(context(root, state)).observed["changes"][0]
    assert change["process"] is None
    assert change["actor_note"] == "no audit record of it (its SYSCALL line is missing)"


def test_collect_and_check_read_the_baseline_but_never_move_it(tmp_path: Path) -> None:
    root, state = make_root(tmp_path), tmp_path / "state"
    nothing = SPEC.collect(context(root, state, keep=False))
    assert nothing.observed["changes"] == [None] and nothing.status is Status.PARTIAL
    assert judge_shipped("file_integrity", nothing)["files-unchanged"] == "unknown"
    assert not (state / NAME).exists()
    SPEC.collect(context(root, state))  # the daemon's run makes the baseline
    (root / "etc/shadow").write_text("root:!:20000:0:99999:7:::\n")
    for _ in range(2):  # seen twice: the read-only run did not take it away from the daemon
        assert [c["path"] for c in SPEC.collect(context(root, state, keep=False)).observed["changes"]] == [
            "/etc/shadow"
        ]
    daemon_run = SPEC.collect(context(root, state)).observed
    assert [c["path"] for c in daemon_run["changes"]] == ["/etc/shadow"]
    assert daemon_run["found_at_startup"] is False  # the baseline was written by this process


def test_a_change_made_while_stopped_is_marked_even_when_the_pid_comes_back(tmp_path: Path) -> None:
    """After a reboot the agent may get its old pid: the baseline of that earlier process is
    still another process's, and a change found against it was made while the agent was down."""
    import json

    root, state = make_root(tmp_path), tmp_path / "state"
    SPEC.collect(context(root, state))
    saved = json.loads((state / NAME).read_text())
    saved["process"] = f"{os.getpid()}-0123456789ab"  # this pid, another process
    (state / NAME).write_text(json.dumps(saved))
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    first = SPEC.collect(context(root, state)).observed
    assert [c["path"] for c in first["changes"]] == ["/etc/passwd"] and first["found_at_startup"] is True
    (root / "etc/shadow").write_text("root:!:20000:0:99999:7:::\n")
    assert SPEC.collect(context(root, state)).observed["found_at_startup"] is False  # found by the running agent


def test_a_damaged_baseline_is_said_and_replaced(tmp_path: Path) -> None:
    root, state = make_root(tmp_path), tmp_path / "state"
    (state / NAME).parent.mkdir(parents=True)
    (state / NAME).write_text('{"format": 1, "files": [')
    outcome = SPEC.collect(context(root, state))
    assert outcome.gaps[0].what == "earlier baseline" and "cannot be read" in outcome.gaps[0].reason
    assert SPEC.collect(context(root, state)).status is Status.COMPLETE
    # valid JSON of the wrong shape (a file's entry not an object): said and replaced, not an error
    # at every run
    (state / NAME).write_text('{"format": 1, "roots": ["/etc/passwd"], "files": {"/etc/passwd": "x"}}')
    outcome = SPEC.collect(context(root, state))
    assert outcome.status is Status.PARTIAL and "not a baseline of format 1" in outcome.gaps[0].reason
    assert SPEC.collect(context(root, state)).status is Status.COMPLETE
