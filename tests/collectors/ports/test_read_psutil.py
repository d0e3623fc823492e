"""lookup_process: owner facts from psutil, the unit from a cgroup file below the context root."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from collectors.base import Context
from collectors.ports.read_psutil import lookup_process
from evidence.model import Gap
from tests.collectors.ports.helpers import FIXTURES


def test_unit_comes_from_the_cgroup_file_below_the_root(tmp_path: Path) -> None:
    pid = os.getpid()
    (tmp_path / "proc" / str(pid)).mkdir(parents=True)
    shutil.copy(FIXTURES / "cgroup_debian-12_systemd-252_ssh-service.txt", tmp_path / "proc" / str(pid) / "cgroup")
    info, gaps = lookup_process(Context(root=tmp_path), pid)
    assert gaps == []
    assert (info.unit, info.cgroup) == ("ssh.service", "/system.slice/ssh.service")
    assert info.exe == os.path.realpath(sys.executable)


def test_missing_and_malformed_cgroup_give_gaps(tmp_path: Path) -> None:
    pid = os.getpid()
    info, gaps = lookup_process(Context(root=tmp_path), pid)
    assert info.unit is None and info.name is not None
    assert gaps == [Gap(f"systemd unit of process {pid}", f"/proc/{pid}/cgroup does not exist")]
    (tmp_path / "proc" / str(pid)).mkdir(parents=True)
    shutil.copy(FIXTURES / "cgroup_malformed_truncated.txt", tmp_path / "proc" / str(pid) / "cgroup")
    _, gaps = lookup_process(Context(root=tmp_path), pid)
    assert gaps[0].reason.startswith(f"unreadable /proc/{pid}/cgroup: line 2 is not")


def test_exited_process_gives_a_gap() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=10)
    info, gaps = lookup_process(Context(), child.pid)
    assert (info.pid, info.name, info.exe, info.user) == (child.pid, None, None, None)
    assert gaps == [Gap(f"process {child.pid}", "exited while its sockets were being read")]
