"""Shared test helpers.

Real components are required under CI (``CI`` set): a missing tool there is a
failure of the set-up, never a skip.  On a developer's machine without the tool
the test is skipped and says which tool to install.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def require_tool(name: str) -> str:
    """Path of ``name``; skips (or fails under CI) when the tool is not installed."""
    found = shutil.which(name) or next(
        (
            p
            for p in (f"/usr/sbin/{name}", f"/sbin/{name}", f"/usr/lib/nut/{name}", f"/lib/nut/{name}")
            if os.access(p, os.X_OK)
        ),
        None,
    )
    if found:
        return found
    message = f"{name} is not installed; scripts/test.sh installs it (Debian packages in packaging/test-deps.txt)"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def require_root(why: str) -> None:
    """Skip (or fail under CI) a test that needs root, e.g. for losetup."""
    if os.geteuid() == 0:
        return
    if in_ci():
        pytest.fail(f"needs root: {why}")
    pytest.skip(f"needs root: {why}")


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES
