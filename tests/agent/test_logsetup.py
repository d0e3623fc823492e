"""Where the agent's log lines go: the journal's native protocol with structured fields, or stderr.

The journal tests need no journald: a child runs in its own mount namespace where
``/run`` is a test directory holding our own datagram socket at
``systemd/journal/socket`` (the path libsystemd sends to), so the datagrams the real
python-systemd library sends are read and parsed here, and the host's own journal
socket, if any, is never touched.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

from agent import logsetup
from tests.centre_process import ROOT, CentreProcess
from tests.conftest import in_ci, require_root, require_tool

AGENT_CONFIG = ROOT / "config" / "agent.yaml"


def require_python_systemd() -> None:
    if importlib.util.find_spec("systemd") is not None:
        return
    message = (
        "python-systemd is not installed in this interpreter; pip install systemd-python "
        "(needs the Debian packages libsystemd-dev, pkg-config, gcc in packaging/test-deps.txt)"
    )
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def parse_native(data: bytes) -> Dict[str, str]:
    """One datagram of the journal's native protocol (systemd.io/JOURNAL_NATIVE_PROTOCOL)."""
    fields: Dict[str, str] = {}
    i = 0
    while i < len(data):
        end = data.index(b"\n", i)
        line = data[i:end]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            i = end + 1
        else:  # a value with newlines: name, 64-bit little-endian size, bytes, newline
            key = line
            (size,) = struct.unpack("<Q", data[end + 1 : end + 9])
            value = data[end + 9 : end + 9 + size]
            assert data[end + 9 + size : end + 10 + size] == b"\n"
            i = end + 10 + size
        fields[key.decode()] = value.decode()
    return fields


class JournalSocket:
    """A directory to mount on ``/run`` in a child's mount namespace, with our journal socket in it."""

    def __init__(self) -> None:
        # A short path: AF_UNIX addresses are limited to 108 bytes.
        self.run = Path(tempfile.mkdtemp(prefix="tj-"))
        (self.run / "systemd" / "journal").mkdir(parents=True)
        self.path = self.run / "systemd" / "journal" / "socket"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))

    def command(self, argv: List[str]) -> List[str]:
        unshare = require_tool("unshare")
        return [
            unshare,
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            'mount --bind "$0" /run && exec "$@"',
            str(self.run),
            *argv,
        ]

    def receive(self, until: float, wanted: int = 1000) -> List[Dict[str, str]]:
        """Entries received before ``until`` (monotonic), or as soon as ``wanted`` have come."""
        entries: List[Dict[str, str]] = []
        while len(entries) < wanted:
            left = until - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                entries.append(parse_native(self.sock.recv(1 << 20)))
            except socket.timeout:
                break
        return entries

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.run, ignore_errors=True)


@pytest.fixture
def journal() -> Iterator[JournalSocket]:
    require_root("mounts a test directory on /run in a private mount namespace")
    require_python_systemd()
    j = JournalSocket()
    yield j
    j.close()


def journal_env(stderr_path: Path) -> Dict[str, str]:
    """The environment systemd gives a service whose stderr is the journal (systemd.exec(5))."""
    st = os.stat(stderr_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TILLSYN_", "NOTIFY_", "WATCHDOG_"))}
    env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    return env


CHILD = textwrap.dedent(
    """
    import logging, sys
    {prelude}
    from agent import logsetup
    print(logsetup.setup("agent-7f3a"), flush=True)
    log = logging.getLogger("tillsyn.agent")
    log.info("agent started")
    log.warning("power: upsd refused the login", extra={{"collector": "power", "control": "M01"}})
    log.debug("not shown at INFO")
    try:
        raise ValueError("bad reading")
    except ValueError:
        log.exception("ports: crashed", extra={{"collector": "ports", "control": "M07,M11"}})
    """
)


def run_child(tmp_path: Path, argv_prefix: List[str], env: Dict[str, str], prelude: str = "") -> tuple[str, str]:
    stderr_path = tmp_path / "stderr.log"
    stderr_path.touch()
    with open(stderr_path, "wb") as err:
        done = subprocess.run(
            [*argv_prefix, sys.executable, "-c", CHILD.format(prelude=prelude)],
            cwd=ROOT,
            env=env if env else journal_env(stderr_path),
            stdout=subprocess.PIPE,
            stderr=err,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, stderr_path.read_text()
    return done.stdout.decode().strip(), stderr_path.read_text()


# -- stderr ------------------------------------------------------------------------


def test_stderr_lines_carry_time_level_logger_and_fields() -> None:
    stream = io.StringIO()
    assert logsetup.setup("agent-1", env={}, stream=stream) == "stderr"
    log = logging.getLogger("tillsyn.agent")
    log.info("report 3 spooled (ports)")
    log.warning("power: upsd refused", extra={"collector": "power", "control": "M01"})
    log.debug("hidden")
    lines = stream.getvalue().splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert len(lines) == 2, lines
    assert re.fullmatch(stamp + r" INFO tillsyn\.agent: report 3 spooled \(ports\)", lines[0])
    assert re.fullmatch(
        stamp + r" WARNING tillsyn\.agent: power: upsd refused \[collector=power control=M01\]", lines[1]
    )


def test_without_journal_stream_a_terminal_gets_stderr_even_with_python_systemd(tmp_path: Path) -> None:
    # libsystemd drops messages silently when journald is absent: a sysadmin running
    # `tillsyn-agent run` in a terminal or a container must still see them.
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    chosen, err = run_child(tmp_path, [], env)
    assert chosen == "stderr"
    assert "INFO tillsyn.agent: agent started" in err
    assert "WARNING tillsyn.agent: power: upsd refused the login [collector=power control=M01]" in err
    assert "ValueError: bad reading" in err and "[collector=ports control=M07,M11]" in err


def test_journal_stream_names_only_the_file_on_stderr(tmp_path: Path) -> None:
    target = tmp_path / "a"
    target.touch()
    other = tmp_path / "b"
    other.touch()
    st = os.stat(target)
    with open(target, "rb") as handle:
        fd = handle.fileno()
        assert logsetup.stderr_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, fd)
        assert not logsetup.stderr_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{os.stat(other).st_ino}"}, fd)
        assert not logsetup.stderr_is_journal({"JOURNAL_STREAM": "garbage"}, fd)
        assert not logsetup.stderr_is_journal({}, fd)


def test_stderr_is_the_journal_but_no_python_systemd_keeps_priorities(tmp_path: Path) -> None:
    # Under systemd without python-systemd: sd-daemon(3) prefixes, no time stamp of our own.
    stderr_path = tmp_path / "stderr.log"
    stderr_path.touch()
    chosen, err = run_child(tmp_path, [], journal_env(stderr_path), prelude="sys.modules['systemd'] = None")
    assert chosen == "stderr+journal"
    lines = err.splitlines()
    assert lines[0] == "<6>agent started"
    assert lines[1] == "<4>power: upsd refused the login [collector=power control=M01]"
    assert lines[2] == "<3>ports: crashed"
    assert lines[-1] == "<3>ValueError: bad reading [collector=ports control=M07,M11]"
    assert all(line.startswith("<3>") for line in lines[2:]), "every line of a traceback keeps its priority"


# -- the journal's native protocol, through the real python-systemd ----------------


def test_journal_entries_carry_the_structured_fields(journal: JournalSocket, tmp_path: Path) -> None:
    chosen, err = run_child(tmp_path, journal.command([]), {})
    assert chosen == "journal"
    assert err == "", "nothing goes to stderr while the journal takes the entries"
    entries = journal.receive(time.monotonic() + 5, wanted=3)
    assert [e["MESSAGE"].splitlines()[0] for e in entries] == [
        "agent started",
        "power: upsd refused the login",
        "ports: crashed",
    ]
    started, warning, crashed = entries
    for entry in entries:
        assert entry["SYSLOG_IDENTIFIER"] == "tillsyn-agent"
        assert entry["LOGGER"] == "tillsyn.agent"
        assert entry["TILLSYN_AGENT_ID"] == "agent-7f3a"  # on every entry, not only where passed
    assert started["PRIORITY"] == "6" and "TILLSYN_COLLECTOR" not in started
    assert warning["PRIORITY"] == "4"
    assert (warning["TILLSYN_COLLECTOR"], warning["TILLSYN_CONTROL"]) == ("power", "M01")
    assert crashed["PRIORITY"] == "3"
    assert (crashed["TILLSYN_COLLECTOR"], crashed["TILLSYN_CONTROL"]) == ("ports", "M07,M11")
    assert "Traceback" in crashed["MESSAGE"] and "ValueError: bad reading" in crashed["MESSAGE"]
    # Only proper journal field names: no lower-case LogRecord attributes leak onto the wire.
    assert all(re.fullmatch(r"[A-Z0-9_]+", key) for e in entries for key in e)


def test_journal_that_refuses_the_entry_sends_it_to_stderr(journal: JournalSocket, tmp_path: Path) -> None:
    journal.sock.close()  # the socket file stays, nobody reads: ECONNREFUSED, as after journald died
    chosen, err = run_child(tmp_path, journal.command([]), {})
    assert chosen == "journal"
    assert "<6>agent started" in err
    assert "<4>power: upsd refused the login [collector=power control=M01]" in err


def test_the_daemon_logs_to_the_journal_with_its_agent_id(journal: JournalSocket, tmp_path: Path) -> None:
    centre = CentreProcess(tmp_path / "centre").start()
    proc: Optional[subprocess.Popen[bytes]] = None
    try:
        state = tmp_path / "agent"
        base = [sys.executable, "-m", "agent.cli", "--config", str(AGENT_CONFIG), "--state-dir", str(state)]
        stderr_path = tmp_path / "daemon.err"
        stderr_path.touch()
        env = journal_env(stderr_path)
        enrolled = subprocess.run(
            [*base, "enroll", "--server", centre.url, "--token", centre.token()],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert enrolled.returncode == 0, enrolled.stderr
        agent_id = enrolled.stdout.split()[2]
        with open(stderr_path, "wb") as err:
            proc = subprocess.Popen(journal.command([*base, "run"]), cwd=ROOT, env=env, stderr=err)
        deadline = time.monotonic() + 60
        entries: List[Dict[str, str]] = []
        while time.monotonic() < deadline and not any(e["MESSAGE"].startswith("report 1 spooled") for e in entries):
            entries += journal.receive(min(deadline, time.monotonic() + 1))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        entries += journal.receive(time.monotonic() + 2)
        messages = [e["MESSAGE"] for e in entries]
        assert f"agent {agent_id} started, reporting to {centre.url}" in messages
        assert any(m.startswith("report 1 spooled (") for m in messages), messages
        assert messages[-1] == "agent stopped"
        assert all(e["TILLSYN_AGENT_ID"] == agent_id and e["SYSLOG_IDENTIFIER"] == "tillsyn-agent" for e in entries)
        assert stderr_path.read_text() == ""
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        centre.stop()
