"""A small size-limited file system (tmpfs with ``size=`` and ``nr_inodes=``) and filling it up,
for the tests of a full disk under an agent's state directory."""

from __future__ import annotations

import errno
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List

import pytest

from tests.conftest import in_ci


def mount_small_tmpfs(where: Path, size: str = "256k", inodes: int = 64) -> None:
    """Mount a tmpfs of ``size`` with ``inodes`` inodes at ``where`` (made); unmount it with
    :func:`unmount`.  Needs root with CAP_SYS_ADMIN: skipped without, failed under CI or as root."""
    where.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},nr_inodes={inodes},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        message = f"mounting a small tmpfs is not permitted here (needs root with CAP_SYS_ADMIN): {mounted.stderr}"
        if in_ci() or os.geteuid() == 0:
            pytest.fail(message)
        pytest.skip(message)


def unmount(where: Path) -> None:
    subprocess.run(["umount", "--lazy", str(where)], check=False)


@contextmanager
def small_tmpfs(where: Path) -> Iterator[Path]:
    """``where`` on a 256 KiB tmpfs with 64 inodes while the block runs (for a fixture to yield)."""
    mount_small_tmpfs(where)
    try:
        yield where
    finally:
        unmount(where)


def fill(directory: Path) -> List[Path]:
    """Take every free inode, then every free block; the files that did it."""
    made: List[Path] = []
    try:
        while True:
            path = directory / f"filler-{len(made)}"
            path.touch()
            made.append(path)
    except OSError as err:
        assert err.errno == errno.ENOSPC, err
    chunk = b"\0" * 4096
    try:
        with open(made[0], "wb") as handle:
            while True:
                handle.write(chunk)
                handle.flush()
    except OSError as err:
        assert err.errno == errno.ENOSPC, err
    return made
