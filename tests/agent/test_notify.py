"""sd_notify(3) messages on a real AF_UNIX datagram socket (path and abstract forms)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Iterator

import pytest

from agent.notify import Notifier


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(2)
    yield sock
    sock.close()


def test_messages_arrive_as_key_value_lines(receiver: socket.socket, tmp_path: Path) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify")})
    assert n.enabled and n.watchdog_interval is None
    assert n.ready("first collection spooled")
    assert receiver.recv(4096) == b"READY=1\nSTATUS=first collection spooled"
    assert n.status("two\nlines")  # a newline would start a new assignment: flattened
    assert receiver.recv(4096) == b"STATUS=two lines"
    assert n.stopping()
    assert receiver.recv(4096) == b"STOPPING=1\nSTATUS=stopping"
    assert not n.watchdog()  # no WATCHDOG_USEC: no pings


def test_abstract_socket() -> None:
    name = f"tillsyn-notify-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).status("hello")
        assert sock.recv(4096) == b"STATUS=hello"


def test_watchdog_only_for_this_process(receiver: socket.socket, tmp_path: Path) -> None:
    address = str(tmp_path / "notify")
    mine = Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid())})
    assert mine.watchdog_interval == 3.0
    assert mine.watchdog()
    assert receiver.recv(4096) == b"WATCHDOG=1"
    other = Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_interval is None and not other.watchdog()
    assert Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "soon"}).watchdog_interval is None


def test_without_systemd_nothing_happens_and_nothing_raises(tmp_path: Path) -> None:
    assert not Notifier({}).enabled and not Notifier({}).ready("x")
    assert not Notifier({"NOTIFY_SOCKET": "relative/path"}).enabled
    # A socket that went away (systemd restarted) is not the agent's failure.
    assert not Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")}).status("x")
