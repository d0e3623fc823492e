"""Pseudonymisation (M13): what the agent replaces, what it keeps, and what reaches the centre."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pwd
import socket
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from agent.pseudonymise import Pseudonymiser, pseudonymised
from evidence.model import Evidence, Status
from tests.agent.daemon_helpers import AgentDaemon, agent_yaml, wait_for
from tests.centre_process import CentreProcess
from tests.conftest import require_root, require_tool

KEY = b"k" * 32


def _system(name: str) -> bool:
    return name in ("root", "www-data")


def test_usernames_and_home_paths_become_stable_pseudonyms() -> None:
    p = Pseudonymiser(KEY, is_system=_system)
    alice = p.name("alice")
    assert alice.startswith("u-") and len(alice) == 14 and "alice" not in alice
    assert alice == "u-" + hmac.new(KEY, b"alice", hashlib.sha256).hexdigest()[:12]
    # Same key, same pseudonym (another node of the fleet); another key, another pseudonym.
    assert Pseudonymiser(KEY, is_system=_system).name("alice") == alice
    assert Pseudonymiser(b"j" * 32, is_system=_system).name("alice") != alice
    assert p.name("bob") != alice
    observed = {
        "listening": [
            {"port": 8080, "process": {"user": "alice", "exe": "/home/alice/bin/server", "name": "server"}},
            {"port": 80, "process": {"user": "www-data", "exe": "/usr/sbin/nginx"}},
            {"port": 22, "process": {"user": "root", "exe": "/usr/sbin/sshd"}},
        ],
        "owner": "bob",
        "paths": ["/home/bob", "/var/home/alice/x", "/srv/home/alice"],
        "count": 3,
        "login": "",
        "duplicate_uids": [{"uid": 1000, "users": ["alice", "root"]}],  # the accounts collector's list
    }
    out = p.apply(observed)
    assert out["listening"][0]["process"] == {"user": alice, "exe": f"/home/{alice}/bin/server", "name": "server"}
    assert out["listening"][1]["process"]["user"] == "www-data"  # system accounts are evidence, kept
    assert out["listening"][2]["process"]["user"] == "root"
    assert out["owner"] == p.name("bob")
    assert out["paths"] == [f"/home/{p.name('bob')}", f"/var/home/{alice}/x", "/srv/home/alice"]
    assert out["count"] == 3 and out["login"] == ""
    assert out["duplicate_uids"] == [{"uid": 1000, "users": [alice, "root"]}]
    assert observed["owner"] == "bob"  # the input is not changed


def test_system_accounts_are_those_below_uid_1000() -> None:
    p = Pseudonymiser(KEY)
    assert p.name("root") == "root"
    below = [e.pw_name for e in pwd.getpwall() if 0 < e.pw_uid < 1000]
    assert below and all(p.name(n) == n for n in below)
    assert p.name("no-such-user-here").startswith("u-")  # unknown names are treated as people


def test_key_must_be_long_enough() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        Pseudonymiser(b"short")


def test_pseudonymised_record_keeps_everything_else() -> None:
    record = Evidence(
        collector="ports",
        collector_version="1",
        controls=("M07",),
        collected_at=datetime.now(timezone.utc),
        duration_ms=2.0,
        status=Status.COMPLETE,
        observed={"user": "alice", "port": 1},
        gaps=(),
        error=None,
    )
    out = pseudonymised(record, Pseudonymiser(KEY, is_system=_system))
    assert out.observed == {"user": Pseudonymiser(KEY, is_system=_system).name("alice"), "port": 1}
    assert (out.collector, out.status, out.controls) == (record.collector, record.status, record.controls)


USER = "tillsyntest"


@pytest.fixture
def person() -> Iterator[str]:
    """A real non-system user created for the test and removed after it."""
    require_root("useradd a non-system user who owns a listening socket")
    useradd = require_tool("useradd")
    subprocess.run(["userdel", USER], capture_output=True, check=False)
    subprocess.run([useradd, "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True)
    try:
        assert pwd.getpwnam(USER).pw_uid >= 1000
        yield USER
    finally:
        subprocess.run(["userdel", USER], check=True)


def _listener(user: str) -> subprocess.Popen[str]:
    """A process of ``user`` listening on a loopback TCP port; prints the port.

    Run by the system's python3: the test environment's interpreter may sit where the user cannot read.
    """
    python = "/usr/bin/python3"
    if not os.access(python, os.X_OK):
        pytest.skip("needs /usr/bin/python3 to run a listener as another user")
    code = (
        "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen()\n"
        "print(s.getsockname()[1],flush=True)\ntime.sleep(120)\n"
    )
    entry = pwd.getpwnam(user)
    return subprocess.Popen(
        [python, "-I", "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        user=entry.pw_uid,
        group=entry.pw_gid,
        extra_groups=[],
        cwd="/",
        env={"PATH": "/usr/bin:/bin"},
    )


def _socket_users(daemon: AgentDaemon, port: int) -> List[Any]:
    users = []
    for row in daemon.stored():
        for record in row["report"]["evidence"]:
            if record["collector"] != "ports":
                continue
            for item in _items(record["observed"]):
                if item.get("port") == port and isinstance(item.get("process"), dict):
                    users.append(item["process"].get("user"))
    return users


def _items(value: Any) -> Iterator[Dict[str, Any]]:
    """Every dict anywhere in ``value`` (the ports evidence nests sockets by state)."""
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from _items(v)
    elif isinstance(value, list):
        for v in value:
            yield from _items(v)


def test_what_reaches_the_centre_is_pseudonymised_until_turned_off(
    centre: CentreProcess, tmp_path: Path, daemons: List[AgentDaemon], person: str
) -> None:
    listener = _listener(person)
    try:
        assert listener.stdout is not None
        port = int(listener.stdout.readline())
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        work = tmp_path / "a"
        daemon = AgentDaemon(work, centre, agent_yaml(work, ports=3600))
        daemons.append(daemon.start())
        users = wait_for("the listener in the ports evidence", lambda: _socket_users(daemon, port), 30, daemon)
        key = (daemon.state / "pseudonym.key").read_bytes()
        assert (daemon.state / "pseudonym.key").stat().st_mode & 0o777 == 0o600
        expected = "u-" + hmac.new(key, person.encode(), hashlib.sha256).hexdigest()[:12]
        assert users == [expected]
        assert person not in json.dumps([r["report"] for r in daemon.stored()])
        # privacy: {pseudonymise: false} (a reload runs the collectors again): the real name goes out.
        daemon.config.write_text(agent_yaml(work, ports=3600, extra="privacy: {pseudonymise: false}\n"))
        users = wait_for(
            "a second ports report",
            lambda: len(_socket_users(daemon, port)) == 2 and _socket_users(daemon, port),
            20,
            daemon,
        )
        assert users == [expected, person]
        assert daemon.stop() == 0
    finally:
        listener.kill()
        listener.wait(10)


def test_crontab_paths_and_sshd_match_users_are_pseudonymised() -> None:
    """A user's crontab is named after them, and so is sshd's Match User block (issue #18)."""
    p = Pseudonymiser(KEY, is_system=_system)
    alice, bob = p.name("alice"), p.name("bob")
    observed = {
        "paths": ["/var/spool/cron/crontabs", "/var/spool/cron/atjobs", "/var/spool/cron"],
        "changes": [
            {"path": "/var/spool/cron/crontabs/alice"},
            {"path": "/var/spool/cron/crontabs/root"},
            {"path": "/var/spool/cron/bob"},  # RHEL's cronie
            {"path": "/etc/cron.d/alice-backup"},  # not a user's crontab: a file name is not a name
        ],
        "summary": {"by_directory": {"/home/alice/.ssh": 2, "/var/spool/cron/crontabs": 1}},
        "contexts": [
            {"context": "global"},
            {"context": "Match User alice,!bob,adm* (/etc/ssh/sshd_config:12)"},
            {"context": "Match Group sftp User root Address 10.0.0.0/8 (/etc/ssh/sshd_config.d/a.conf:3)"},
            {"context": "user alice from 203.0.113.10 (unknown)"},
        ],
    }
    out = p.apply(observed)
    assert out["paths"] == observed["paths"]
    assert out["summary"]["by_directory"] == {f"/home/{alice}/.ssh": 2, "/var/spool/cron/crontabs": 1}
    assert [c["path"] for c in out["changes"]] == [
        f"/var/spool/cron/crontabs/{alice}",
        "/var/spool/cron/crontabs/root",
        f"/var/spool/cron/{bob}",
        "/etc/cron.d/alice-backup",
    ]
    assert [c["context"] for c in out["contexts"]] == [
        "global",
        f"Match User {alice},!{bob},adm* (/etc/ssh/sshd_config:12)",
        "Match Group sftp User root Address 10.0.0.0/8 (/etc/ssh/sshd_config.d/a.conf:3)",
        f"user {alice} from 203.0.113.10 (unknown)",
    ]
