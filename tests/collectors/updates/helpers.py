"""A node's apt state in a test root: a dpkg status database, a local file repository holding
newer versions of its packages (built with dpkg-deb), kernels in /boot and reboot-required.

apt is pointed at the root with ``-o Dir=<root>`` (apt.conf(5)), so neither the tests nor the
collector ever read or change the machine's own apt state.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Dict, Sequence, Tuple

from tests.conftest import require_tool

Package = Tuple[str, str]  # (name, version)
APT_DIRS = (
    "etc/apt/apt.conf.d",
    "etc/apt/preferences.d",
    "etc/apt/sources.list.d",
    "var/lib/dpkg/updates",
    "var/lib/dpkg/info",
    "var/lib/apt/lists/partial",
    "var/cache/apt/archives/partial",
    "var/log/apt",
)


def _deb(workdir: Path, name: str, version: str, out: Path) -> None:
    build = workdir / f"build-{name}-{version}"
    (build / "DEBIAN").mkdir(parents=True)
    (build / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: Tillsyn tests <tests@example.invalid>\n"
        f"Description: test package for the updates collector\n"
    )
    subprocess.run([require_tool("dpkg-deb"), "--build", str(build), str(out)], check=True, capture_output=True)


def repository(workdir: Path, packages: Sequence[Package], label: str, suite: str) -> Path:
    """A flat repository (``deb [trusted=yes] file:<dir> ./``) with a Release naming label and suite."""
    repo = workdir / f"repo-{suite}"
    repo.mkdir(parents=True)
    for name, version in packages:
        _deb(workdir, name, version, repo / f"{name}_{version}_all.deb")
    scan = subprocess.run(
        [require_tool("dpkg-scanpackages"), ".", "/dev/null"], cwd=repo, check=True, capture_output=True
    )
    (repo / "Packages").write_bytes(scan.stdout)
    digest = hashlib.sha256(scan.stdout).hexdigest()
    (repo / "Release").write_text(
        f"Origin: Tillsyn tests\nLabel: {label}\nSuite: {suite}\nCodename: {suite}\n"
        f"Date: Mon, 07 Dec 2026 00:00:00 UTC\nSHA256:\n {digest} {len(scan.stdout)} Packages\n"
    )
    return repo


def apt_root(root: Path, installed: Sequence[Package], repos: Sequence[Path]) -> Path:
    """The directories apt needs below ``root``, ``installed`` in dpkg's status, ``repos`` as sources."""
    for d in APT_DIRS:
        (root / d).mkdir(parents=True, exist_ok=True)
    write_status(root, installed)
    (root / "etc/apt/sources.list").write_text("".join(f"deb [trusted=yes] file:{r} ./\n" for r in repos))
    return root


def write_status(root: Path, installed: Sequence[Package]) -> None:
    """dpkg's status database with ``installed`` packages (what dpkg writes after installing them)."""
    (root / "var/lib/dpkg/status").write_text(
        "".join(
            f"Package: {name}\nStatus: install ok installed\nPriority: optional\nSection: misc\n"
            f"Maintainer: Tillsyn tests <tests@example.invalid>\nArchitecture: all\nVersion: {version}\n"
            f"Description: test package\n\n"
            for name, version in installed
        )
    )


def apt_update(root: Path) -> None:
    """Fetch the local repositories' lists into the root (the test's doing, never the collector's)."""
    subprocess.run(
        [require_tool("apt-get"), "-q", "-o", f"Dir={root}", "-o", "Debug::NoLocking=1", "update"],
        check=True,
        capture_output=True,
        timeout=60,
    )


def node_files(root: Path, files: Dict[str, str]) -> None:
    for absolute, text in files.items():
        target = root / absolute.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
