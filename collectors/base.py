"""What every collector is given and what it declares.

A collector is a :class:`CollectorSpec`: a name, a version, the control ids it
serves, a settings schema, its scheduling defaults, and a ``collect(ctx)`` function
returning an :class:`~evidence.model.Outcome`.  All I/O goes through the :class:`Context`, so
tests move the filesystem root, replace the clock or point sockets at private
servers without patching.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Hashable, Mapping, Optional, Sequence, Tuple, TypeVar, cast

from collectors import runner
from collectors.settings import Schema
from evidence.model import Outcome

Runner = Callable[..., runner.CommandResult]
T = TypeVar("T")


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class RoundReads:
    """What several collectors read from the node in one round (the socket table, the process list),
    read by the first that asks and handed to the others: one pass over ``/proc`` instead of one each.

    Collectors run in threads at once, so a second asker waits for the first's read.  A read that
    raises is not kept: the next asker tries again (and gets its own error).
    """

    def __init__(self) -> None:
        self._values: Dict[str, Any] = {}
        self._locks: Dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: str, read: Callable[[], T]) -> T:
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._values:
                self._values[key] = read()
            return cast(T, self._values[key])


@dataclass
class Context:
    """The node as a collector may see it."""

    root: Path = Path("/")
    """Filesystem root: every absolute path a collector reads is taken below it."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """This collector's validated settings (defaults filled in)."""
    run: Runner = runner.run
    """The subprocess runner; always called with an argument list and a timeout."""
    now: Callable[[], datetime] = _utc_now
    euid: int = field(default_factory=os.geteuid)
    command_timeout: float = runner.DEFAULT_TIMEOUT
    hostname: str = field(default_factory=socket.gethostname)
    """This node's name as the kernel has it (uname -n), which restic records in its snapshots."""
    state_dir: Optional[Path] = None
    """The agent's state directory, for a collector that keeps something between runs (a baseline)."""
    keep_state: bool = False
    """Whether this run may write there: the daemon's runs do; ``collect`` and ``check`` only read.
    A cache that only saves work and changes no answer (the updates collector's simulated upgrade)
    is written by every run that can."""
    shared: Optional[RoundReads] = None
    """The round's shared reads (:meth:`once`); ``None`` outside a round, where every read is fresh."""

    def path(self, absolute: str) -> Path:
        """``absolute`` (e.g. ``/sys/block``) below :attr:`root`."""
        return self.root / absolute.lstrip("/")

    def read_text(self, absolute: str, limit: int = 1024 * 1024) -> str:
        """Read a (small) file below :attr:`root`; raises ``OSError`` like ``open``."""
        return self.read_bytes(absolute, limit).decode("utf-8", errors="replace")

    def read_bytes(self, absolute: str, limit: int) -> bytes:
        """Up to ``limit`` bytes of a file below :attr:`root`; raises ``OSError`` like ``open``."""
        with open(self.path(absolute), "rb") as handle:
            return handle.read(limit)

    def once(self, key: str, read: Callable[[], T]) -> T:
        """``read()``, or its answer from earlier in this round when another collector asked already.

        Only for reads whose answer every collector of the round may see (never settings-dependent).
        """
        return read() if self.shared is None else self.shared.get(key, read)

    def command(self, argv: Sequence[str], **kwargs: Any) -> runner.CommandResult:
        """Run a command with this context's default timeout unless one is given."""
        kwargs.setdefault("timeout", self.command_timeout)
        return self.run(argv, **kwargs)

    @property
    def is_root(self) -> bool:
        return self.euid == 0

    def with_settings(self, settings: Mapping[str, Any]) -> Context:
        return Context(
            self.root,
            settings,
            self.run,
            self.now,
            self.euid,
            self.command_timeout,
            self.hostname,
            self.state_dir,
            self.keep_state,
            self.shared,
        )


def _no_paths(settings: Mapping[str, Any], state_dir: Optional[Path] = None) -> Sequence[str]:
    return ()


@dataclass(frozen=True)
class CollectorSpec:
    """A registered collector (see docs/adding-a-collector.md for the package layout)."""

    name: str
    version: str
    """``MAJOR.MINOR``: a new minor for new facts, a new major when a fact changes meaning."""
    controls: Tuple[str, ...]
    collect: Callable[[Context], Outcome]
    settings: Schema = field(default_factory=dict)
    summary: Callable[[Mapping[str, Any]], str] = lambda observed: ""
    """One line of key facts for the ``collect`` table, from ``observed``."""
    watch_paths: Callable[[Mapping[str, Any], Optional[Path]], Sequence[str]] = _no_paths
    """Files whose change should trigger this collector at once (used by the daemon), from the
    collector's settings and the agent's state directory (``--state-dir``; None when it has none)."""
    watch_below: bool = False
    """A directory among ``watch_paths`` counts every file below it, in subdirectories too (as the
    collector reads it); else only the files directly in it."""
    quick_check: Optional[Callable[[Context], Hashable]] = None
    """A cheap check (``quick.py``) run every ``poll`` seconds; a changed answer runs the collector at once."""
    interval: int = 300
    """Default seconds between runs in the daemon (``interval`` in agent.yaml overrides it)."""
    timeout: float = 30.0
    """Default seconds before a run is abandoned and reported as errored (``timeout`` in agent.yaml)."""
    poll: float = 0.0
    """Default seconds between quick checks (0: off; only meaningful with a ``quick_check``)."""


def describe_os_error(err: OSError, what: str) -> str:
    """A reason for a gap: "not root: cannot read X" rather than a bare errno."""
    if isinstance(err, PermissionError):
        return f"permission denied reading {what} (running as uid {os.geteuid()}; root sees more)"
    if isinstance(err, FileNotFoundError):
        return f"{what} does not exist"
    return f"cannot read {what}: {err.strerror or err}"


Observed = Dict[str, Any]
