"""The process lists collectors use: /proc's comm names (a hint for time and logging), the real /proc
and a tree without one; psutil's list, read once per collection round."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from collectors.base import Context, RoundReads
from collectors.processes import comm_name, psutil_processes, running_names


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


def test_psutil_processes_are_read_once_a_round_and_afresh_outside_one() -> None:
    round_ctx = Context(shared=RoundReads())
    before = {proc.pid for proc, _ in psutil_processes(round_ctx)}
    with subprocess.Popen(["sleep", "30"]) as child:
        try:
            assert child.pid not in {proc.pid for proc, _ in psutil_processes(round_ctx.with_settings({}))}
            assert child.pid in {proc.pid for proc, _ in psutil_processes(Context(shared=RoundReads()))}
            assert (child.pid, "sleep") in {(proc.pid, name) for proc, name in psutil_processes(Context())}
        finally:
            child.kill()
    assert os.getpid() in before
