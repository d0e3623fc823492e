"""File-event triggers: a change to a file a collector depends on runs that collector at once.

Watches the parent directory of each file (files are often replaced by rename, which
a watch on the file itself would miss) with ``watchdog`` (inotify on Linux).  A path that is a
directory (``/etc/sudoers.d``) is watched itself as well: a change to any file directly in it
counts as a change to it, and for the names started ``below`` (file_integrity, which hashes whole
trees) a change anywhere below it, in subdirectories made later too.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Set

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger("tillsyn.agent.watch")
CHANGES = frozenset({"created", "modified", "moved", "deleted", "closed"})
CONFIG = "<config>"
"""The name under which a change to agent.yaml is reported."""


class _Handler(FileSystemEventHandler):
    def __init__(
        self,
        targets: Mapping[str, Set[str]],
        notify: Callable[[Set[str]], None],
        inside: Optional[Mapping[str, Set[str]]] = None,
        below: Optional[Mapping[str, Set[str]]] = None,
    ) -> None:
        self.targets = targets
        self.notify = notify
        self.inside = inside or {}
        """Watched directories -> the names that depend on every file in them."""
        self.below = below or {}
        """Directories watched recursively -> the names that depend on every file below them."""

    def on_any_event(self, event: FileSystemEvent) -> None:
        # Only changes count: newer watchdog also reports opens and reads (IN_OPEN,
        # IN_CLOSE_NOWRITE), and a collector reading its own file must not re-trigger itself.
        if event.event_type not in CHANGES:
            return
        # watchdog before 4 (no event filter) also reports a directory as modified when a file in it
        # changes: that is no change to a file directly in its parent, the file's own event follows.
        contents_only = event.is_directory and event.event_type == "modified"
        names: Set[str] = set()
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            path = os.fsdecode(raw) if isinstance(raw, bytes) else str(raw or "")
            if path:
                path = os.path.normpath(path)
                names |= self.targets.get(path, set())
                if not contents_only:
                    names |= self.inside.get(os.path.dirname(path), set())
                    names |= {n for d, found in self.below.items() if path.startswith(d + os.sep) for n in found}
        if names:
            self.notify(names)


def _schedule(observer: Any, handler: FileSystemEventHandler, directory: str, recursive: bool = False) -> None:
    """Watch ``directory`` for changes only.

    watchdog 4 and newer can ask inotify for just the change events (``event_filter``);
    without it every program that opens a file in a watched directory such as /etc wakes
    the agent.  Older watchdog (Debian 12 ships 2.2.1) takes no filter; there the
    handler's own check keeps opens from triggering anything.
    """
    try:
        from watchdog import events

        wanted = [
            getattr(events, name)
            for name in (
                "FileCreatedEvent",
                "FileModifiedEvent",
                "FileDeletedEvent",
                "FileMovedEvent",
                "FileClosedEvent",
                "DirCreatedEvent",
                "DirDeletedEvent",
                "DirMovedEvent",
            )
            if hasattr(events, name)
        ]
        observer.schedule(handler, directory, recursive=recursive, event_filter=wanted)
    except TypeError:  # no event_filter in this watchdog
        observer.schedule(handler, directory, recursive=recursive)


class Watcher:
    """Maps changed paths to the collectors (and the config) that depend on them."""

    def __init__(self, notify: Callable[[Set[str]], None]) -> None:
        self.notify = notify
        self.observer: Optional[Observer] = None  # type: ignore[valid-type]
        self.watched: Dict[str, Set[str]] = {}

    def start(self, paths_by_name: Mapping[str, Iterable[str]], below: Iterable[str] = ()) -> int:
        """(Re)start watching; returns how many directories are watched.  For the names in ``below``
        a directory's subdirectories are watched too (inotify watches each; watchdog adds new ones)."""
        self.stop()
        targets: Dict[str, Set[str]] = {}
        for name, paths in paths_by_name.items():
            for path in paths:
                targets.setdefault(os.path.normpath(path), set()).add(name)
        directories = {os.path.dirname(p) for p in targets if os.path.isdir(os.path.dirname(p))}
        inside = {p: names for p, names in targets.items() if os.path.isdir(p)}
        deep = set(below)
        recursive = {p: names & deep for p, names in inside.items() if names & deep}
        directories |= set(inside)
        observer = Observer()
        handler = _Handler(targets, self.notify, inside, recursive)
        for directory in sorted(directories):
            try:
                _schedule(observer, handler, directory, directory in recursive)
            except OSError as err:
                log.warning("cannot watch %s: %s", directory, err)
        observer.daemon = True
        observer.start()
        self.observer = observer
        self.watched = targets
        return len(directories)

    def stop(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=5)
            self.observer = None
