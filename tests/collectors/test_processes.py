"""The process list the time and logging collectors use as a hint: the real /proc, and a tree without one."""

from __future__ import annotations

import os
from pathlib import Path

from collectors.base import Context
from collectors.processes import comm_name, running_names


def test_the_real_proc_lists_this_process() -> None:
    names, why = running_names(Context())
    own = Path(f"/proc/{os.getpid()}/comm").read_text().strip()
    assert names is not None and own in names and why == ""


def test_a_root_without_proc_cannot_tell_and_says_why(tmp_path: Path) -> None:
    assert running_names(Context(root=tmp_path)) == (None, "/proc does not exist")
    (tmp_path / "proc").mkdir()
    assert running_names(Context(root=tmp_path)) == (None, "/proc lists no processes (not a mounted procfs)")


def test_names_are_cut_as_the_kernel_cuts_them() -> None:
    assert comm_name("systemd-timesyncd") == "systemd-timesyn" and comm_name("auditd") == "auditd"
