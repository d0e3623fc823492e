"""The policy the centre runs with, and reloading it without ever running a broken one."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Optional, Tuple

from evidence.policy import SHIPPED_POLICY, Policy, PolicyError, parse_policy, policy_path

__all__ = ["SHIPPED_POLICY", "PolicyHolder", "policy_path", "read_policy"]

log = logging.getLogger("tillsyn.central.policy")


def read_policy(path: Path) -> Policy:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise PolicyError(f"{path}: cannot read: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise PolicyError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason})") from err
    return parse_policy(text, str(path))


class PolicyHolder:
    """Holds the running policy; :meth:`reload_if_changed` swaps it only for a valid file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.policy = read_policy(path)
        self.last_error: Optional[str] = None
        self._mtime = self._stat()
        self._lock = threading.Lock()
        self.generation = 0
        """Counts the policies that took effect since start-up."""
        self.judged_generation = 0
        """The newest generation every node has been judged by (:meth:`judged`)."""

    @property
    def judging_due(self) -> bool:
        """A policy took effect that the nodes have not all been judged by yet."""
        return self.judged_generation != self.generation

    def judged(self, generation: int) -> None:
        """Every node was judged by ``generation`` in a committed transaction."""
        with self._lock:
            self.judged_generation = max(self.judged_generation, generation)

    def _stat(self) -> Optional[Tuple[int, int, int]]:
        """What tells a changed file: mtime in ns, size, and inode (an editor's or ``mv``'s replace)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def reload_if_changed(self) -> bool:
        """True when a new policy took effect; a broken file is logged and kept out."""
        with self._lock:
            mtime = self._stat()
            if mtime == self._mtime:
                return False
            self._mtime = mtime
            try:
                policy = read_policy(self.path)
            except PolicyError as err:
                self.last_error = str(err)
                log.error("policy not reloaded, the running policy stays in force: %s", err)
                return False
            self.policy, self.last_error = policy, None
            self.generation += 1
            log.info("policy reloaded from %s: %d rules", self.path, len(policy.rules))
            return True
