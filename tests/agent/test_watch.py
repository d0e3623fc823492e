"""File-event triggers with real inotify: changes count, reads do not."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import List, Set

from agent.watch import CONFIG, Watcher


class Events:
    def __init__(self) -> None:
        self.seen: List[Set[str]] = []
        self.lock = threading.Lock()

    def __call__(self, names: Set[str]) -> None:
        with self.lock:
            self.seen.append(set(names))

    def names(self) -> Set[str]:
        with self.lock:
            return set().union(*self.seen) if self.seen else set()

    def wait(self, name: str, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if name in self.names():
                return True
            time.sleep(0.05)
        return False

    def clear(self) -> None:
        with self.lock:
            self.seen.clear()


def test_changes_trigger_the_owner_reads_do_not(tmp_path: Path) -> None:
    marker, config, other = tmp_path / "marker.json", tmp_path / "agent.yaml", tmp_path / "unrelated"
    marker.write_text("{}")
    config.write_text("jitter: 0\n")
    events = Events()
    watcher = Watcher(events)
    try:
        assert watcher.start({"backup": [str(marker)], CONFIG: [str(config)], "power": [str(tmp_path / "no/dir")]}) == 1
        marker.write_text('{"result": "success"}')
        assert events.wait("backup")
        assert "power" not in events.names() and CONFIG not in events.names()
        config.write_text("jitter: 0.2\n")
        assert events.wait(CONFIG)
        time.sleep(0.3)
        events.clear()
        # A collector reading its file (open, read, close without writing) and a stat: no event.
        for _ in range(3):
            marker.read_bytes()
            os.stat(marker)
        other.write_text("x")  # another file in the same directory
        time.sleep(1.0)
        assert events.names() == set()
        # Replaced by rename, as editors and atomic writers do: seen.
        tmp = tmp_path / ".marker.tmp"
        tmp.write_text("{}")
        os.replace(tmp, marker)
        assert events.wait("backup")
        events.clear()
        marker.unlink()
        assert events.wait("backup")
    finally:
        watcher.stop()


def test_restart_watches_the_new_set_only(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "f", tmp_path / "b" / "f"
    a.parent.mkdir()
    b.parent.mkdir()
    events = Events()
    watcher = Watcher(events)
    try:
        watcher.start({"backup": [str(a)]})
        watcher.start({"power": [str(b)]})  # a reload with other paths
        a.write_text("1")
        b.write_text("1")
        assert events.wait("power")
        time.sleep(0.5)
        assert "backup" not in events.names()
    finally:
        watcher.stop()


def test_a_watched_directory_counts_every_file_directly_in_it(tmp_path: Path) -> None:
    drop_ins = tmp_path / "sudoers.d"
    drop_ins.mkdir()
    (drop_ins / "deeper").mkdir()
    events = Events()
    watcher = Watcher(events)
    try:
        # the directory and its parent (which sees the directory replaced or removed)
        assert watcher.start({"file_integrity": [str(drop_ins)]}) == 2
        (drop_ins / "90-admins").write_text("anna ALL=(ALL) NOPASSWD: ALL\n")
        assert events.wait("file_integrity")
        time.sleep(1.0)  # the write's later events (modified, closed) arrive too
        events.clear()
        (drop_ins / "deeper" / "x").write_text("x")  # not recursive: a subdirectory's files are not
        time.sleep(1.0)
        assert events.names() == set()
        (drop_ins / "90-admins").unlink()
        assert events.wait("file_integrity")
    finally:
        watcher.stop()


def test_a_directory_watched_below_counts_files_in_subdirectories(tmp_path: Path) -> None:
    """file_integrity hashes every file below a directory (/etc/security/limits.d): a change there,
    in a subdirectory made after the start too, runs it; a name not watching below is not run."""
    security = tmp_path / "security"
    (security / "limits.d").mkdir(parents=True)
    events = Events()
    watcher = Watcher(events)
    try:
        assert (
            watcher.start({"file_integrity": [str(security)], "accounts": [str(security)]}, below={"file_integrity"})
            == 2
        )
        (security / "limits.d" / "90-nofile.conf").write_text("* soft nofile 65536\n")
        assert events.wait("file_integrity")
        time.sleep(1.0)
        assert events.names() == {"file_integrity"}  # accounts counts only files directly in it
        events.clear()
        (security / "namespace.d").mkdir()  # made after the start
        time.sleep(0.5)
        events.clear()
        (security / "namespace.d" / "tmp.conf").write_text("/tmp /tmp-inst/ level root\n")
        assert events.wait("file_integrity")
        events.clear()
        (security / "access.conf").write_text("-:ALL:ALL\n")  # directly in it: both
        assert events.wait("file_integrity") and events.wait("accounts")
    finally:
        watcher.stop()
