"""The agent's .rpm, built by scripts/package.sh rpm and read with rpm's own queries and rpmlint.

There is no RHEL, Rocky, Alma or Fedora root here (packaging/README.md): the package is checked
for what it holds, what it requires and what its scripts do, not installed.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import List

import pytest

from tests.centre_process import ROOT
from tests.conftest import require_tool

VERSION = "0.1.0"


@pytest.fixture(scope="module")
def rpm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tool("rpmbuild")
    dist = tmp_path_factory.mktemp("rpm")
    built = subprocess.run(
        [str(ROOT / "scripts" / "package.sh"), "rpm"],
        env={**os.environ, "TILLSYN_DIST": str(dist)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return dist / f"tillsyn-agent-{VERSION}-1.noarch.rpm"


def query(rpm: Path, *args: str) -> List[str]:
    out = subprocess.run(["rpm", "-qp", *args, str(rpm)], capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.splitlines()


def test_files_are_private_with_launcher_unit_and_man_page(rpm: Path) -> None:
    files = query(rpm, "-l")
    assert "/usr/share/tillsyn/agent/cli.py" in files
    assert "/usr/share/tillsyn/evidence/defaults/policy.yaml" in files
    assert not [f for f in files if "-packages/" in f or f.startswith("/usr/share/tillsyn/central")]
    for path in (
        "/usr/bin/tillsyn-agent",
        "/usr/lib/systemd/system/tillsyn-agent.service",
        "/usr/lib/tmpfiles.d/tillsyn-agent.conf",
        "/var/lib/tillsyn",
    ):
        assert path in files
    assert [f for f in files if f.startswith("/usr/share/man/man1/tillsyn-agent.1")]


def test_configuration_files_are_never_replaced(rpm: Path) -> None:
    assert query(rpm, "-c") == ["/etc/tillsyn/agent.yaml", "/etc/tillsyn/policy.yaml"]
    flags = subprocess.run(
        ["rpm", "-qp", "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\n]", str(rpm)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "cn /etc/tillsyn/agent.yaml" in flags  # c: config, n: noreplace


def test_requires_the_distributions_libraries_at_the_tested_floors(rpm: Path) -> None:
    requires = set(query(rpm, "--requires"))
    assert {
        "python3 >= 3.9",
        "python3-psutil >= 5.9.4",
        "python3-watchdog >= 2.2.1",
        "python3-cryptography >= 38",
        "python3-requests >= 2.28",
        "python3-pyyaml >= 6.0",
    } <= requires
    assert "python3-systemd" in query(rpm, "--recommends")


def test_scripts_neither_enable_nor_start_and_restart_on_upgrade(rpm: Path) -> None:
    scripts = "\n".join(query(rpm, "--scripts"))
    assert "systemctl enable" not in scripts and "systemctl start" not in scripts
    assert "try-restart tillsyn-agent.service" in scripts
    assert "disable --now tillsyn-agent.service" in scripts  # erase stops it


def test_rpmlint_finds_no_errors(rpm: Path) -> None:
    rpmlint = require_tool("rpmlint")
    found = subprocess.run(
        [rpmlint, "-r", str(ROOT / "packaging" / "rpm" / "tillsyn-agent.rpmlintrc"), str(rpm)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert found.returncode == 0 and " 0 errors" in found.stdout, found.stdout
