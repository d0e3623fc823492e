"""Against a real clamd started by the test on a private socket: PING/VERSION, stopped and hung daemons."""

from __future__ import annotations

import json
import os
import signal
import socket
from pathlib import Path
from typing import Iterator, Tuple

import pytest

from collectors.antivirus import read_clamd, read_system
from collectors.antivirus.collect import collect_with
from evidence.model import Status
from tests.collectors.antivirus.helpers import FIX, clamd_engine_version, context, make_tree, start_clamd, stop
from tests.conftest import require_tool

TREE_CONF = "LocalSocket /run/clamav/clamd.ctl\nDatabaseDirectory /var/lib/clamav\n"


@pytest.fixture(scope="module")
def running_clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[Path, str]]:
    """A node tree whose clamd.conf socket is served by a real clamd; yields (tree, engine version)."""
    clamd = require_tool("clamd")
    base = tmp_path_factory.mktemp("clamd")
    tree = make_tree(
        base / "t",
        {
            "/etc/clamav/clamd.conf": TREE_CONF,
            "/var/lib/clamav/daily.cvd": FIX / "cvd-header_crafted_daily-27450.bin",
            "/var/lib/clamav/main.cvd": FIX / "cvd-header_clamav-main-57_published-no-stime.bin",
        },
    )
    proc = start_clamd(clamd, base / "work", tree / "run/clamav/clamd.ctl")
    try:
        yield tree, clamd_engine_version(clamd)
    finally:
        stop(proc)


def test_client_ping_version_and_unknown_command(running_clamd: Tuple[Path, str]) -> None:
    tree, engine = running_clamd
    address = read_clamd.ClamdAddress(path=str(tree / "run/clamav/clamd.ctl"))
    assert read_clamd.query(address, "PING", 2.0) == "PONG"
    assert read_clamd.query(address, "VERSION", 2.0) == f"ClamAV {engine}"
    assert read_clamd.query(address, "FOO", 2.0) == "UNKNOWN COMMAND"


def test_collect_with_running_clamd(running_clamd: Tuple[Path, str]) -> None:
    tree, engine = running_clamd
    outcome = collect_with(context(tree), read_system.list_processes)
    json.dumps(outcome.observed)  # evidence must be JSON-serialisable
    assert outcome.status is Status.COMPLETE, outcome.gaps
    clamav = outcome.observed["products"][0]
    assert clamav["product"] == "clamav"
    assert clamav["running"] is True  # the clamd process started above
    assert clamav["version"] == engine
    assert clamav["signature_time"] == "2026-11-25T09:24:01Z"
    assert clamav["real_time_protection"] is False
    details = outcome.observed["clamav"]
    assert details["clamd"] == {
        "process_running": True,
        "address": "unix:/run/clamav/clamd.ctl",
        "responding": True,
        "engine_version": engine,
        "database_version": None,
        "database_date": None,
        "database_time": None,
    }
    assert details["databases"] == [
        {
            "name": "main",
            "file": "/var/lib/clamav/main.cvd",
            "version": 57,
            "build_time": "2016-03-16T23:17:00Z",
            "signatures": 4218790,
            "functionality_level": 60,
            "builder": "",
        },
        {
            "name": "daily",
            "file": "/var/lib/clamav/daily.cvd",
            "version": 27450,
            "build_time": "2026-11-25T09:24:01Z",
            "signatures": 2077530,
            "functionality_level": 90,
            "builder": "tillsyn-test",
        },
    ]
    assert details["newest_signature_time"] == "2026-11-25T09:24:01Z"
    assert details["freshclam"]["conf_present"] is False
    assert details["freshclam"]["configured"] is False


def test_killed_clamd_leaves_stale_socket_reported_not_responding(tmp_path: Path) -> None:
    clamd = require_tool("clamd")
    tree = make_tree(tmp_path / "t", {"/etc/clamav/clamd.conf": TREE_CONF})
    sock = tree / "run/clamav/clamd.ctl"
    proc = start_clamd(clamd, tmp_path / "work", sock)
    stop(proc, hard=True)  # SIGKILL: clamd cannot remove its socket file
    assert sock.exists()
    outcome = collect_with(context(tree), lambda names: [])
    clamd_facts = outcome.observed["clamav"]["clamd"]
    assert clamd_facts["responding"] is False
    assert clamd_facts["reason"] == (
        "connection refused at unix:/run/clamav/clamd.ctl (clamd not running; stale socket file?)"
    )
    assert outcome.observed["products"][0]["running"] is False
    # A refused socket is an observation, not a blind spot: complete, with responding false.
    assert outcome.status is Status.COMPLETE
    assert outcome.gaps == []


def test_hung_real_clamd_is_not_running(tmp_path: Path) -> None:
    """A real clamd stopped with SIGSTOP: its process exists and its socket accepts, but PING gets
    no answer.  Nothing scans, so ClamAV is not running (its process alone used to count)."""
    clamd = require_tool("clamd")
    tree = make_tree(tmp_path / "t", {"/etc/clamav/clamd.conf": TREE_CONF})
    proc = start_clamd(clamd, tmp_path / "work", tree / "run/clamav/clamd.ctl")
    try:
        os.kill(proc.pid, signal.SIGSTOP)
        outcome = collect_with(context(tree, socket_timeout=0.5), read_system.list_processes)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        stop(proc)
    clamd_facts = outcome.observed["clamav"]["clamd"]
    assert (clamd_facts["process_running"], clamd_facts["responding"]) == (True, False)
    assert clamd_facts["reason"] == "clamd at unix:/run/clamav/clamd.ctl did not answer PING within 0.5 s"
    product = outcome.observed["products"][0]
    assert (product["processes"], product["running"]) == (["clamd"], False)


def test_missing_socket_is_not_responding(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "t", {"/etc/clamav/clamd.conf": TREE_CONF})
    clamd_facts = collect_with(context(tree), lambda names: []).observed["clamav"]["clamd"]
    assert clamd_facts["responding"] is False
    assert clamd_facts["reason"] == "unix:/run/clamav/clamd.ctl does not exist (clamd not running)"


def test_hung_daemon_times_out_within_setting(tmp_path: Path) -> None:
    """A socket that accepts but never answers (a clamd still loading) costs at most socket_timeout."""
    tree = make_tree(tmp_path / "t", {"/etc/clamav/clamd.conf": TREE_CONF})
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tree / "hang.sock"))
        server.listen(1)  # never accept(): the client's connect succeeds, its recv waits
        outcome = collect_with(context(tree, clamd_socket="/hang.sock", socket_timeout=0.3), lambda names: [])
    clamd_facts = outcome.observed["clamav"]["clamd"]
    assert clamd_facts["address"] == "unix:/hang.sock"
    assert clamd_facts["responding"] is False
    assert clamd_facts["reason"] == "clamd at unix:/hang.sock did not answer PING within 0.3 s"


def test_tcp_refused(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a free loopback port, closed again: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tree = make_tree(tmp_path / "t", {"/etc/clamav/clamd.conf": f"TCPSocket {port}\nTCPAddr 127.0.0.1\n"})
    clamd_facts = collect_with(context(tree), lambda names: []).observed["clamav"]["clamd"]
    assert clamd_facts["address"] == f"tcp:127.0.0.1:{port}"
    assert clamd_facts["responding"] is False
    assert clamd_facts["reason"].startswith(f"connection refused at tcp:127.0.0.1:{port}")
