"""A node's apt state in a test root: a dpkg status database, a local file repository holding
newer versions of its packages (built with dpkg-deb), kernels in /boot and reboot-required.

apt is pointed at the root with ``-o Dir=<root>`` (apt.conf(5)), so neither the tests nor the
collector ever read or change the machine's own apt state.
"""

from __future__ import annotations

import hashlib
import shutil
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


# ---------------------------------------------------------------- dnf: RPMs, a repository with updateinfo
SPEC_TEMPLATE = """Name: {name}
Version: {version}
Release: 1
Summary: test package for the updates collector
License: MIT
BuildArch: noarch
%description
test package
%files
"""

UPDATEINFO = """<?xml version="1.0" encoding="UTF-8"?>
<updates>
  <update from="tests@example.invalid" status="final" type="security" version="2.0">
    <id>{advisory}</id>
    <title>Important: {name} security update</title>
    <issued date="2026-12-01 00:00:00"/>
    <severity>Important</severity>
    <description>Fixes a test vulnerability.</description>
    <pkglist>
      <collection short="tillsyn">
        <name>tillsyn</name>
        <package name="{name}" version="{version}" release="1" epoch="0" arch="noarch" src="{name}-{version}-1.src.rpm">
          <filename>{name}-{version}-1.noarch.rpm</filename>
        </package>
      </collection>
    </pkglist>
  </update>
</updates>
"""


def rpms(workdir: Path, packages: Sequence[Package]) -> Dict[Package, Path]:
    """Empty noarch RPMs built with rpmbuild, by (name, version)."""
    top = workdir / "rpmbuild"
    (top / "SPECS").mkdir(parents=True, exist_ok=True)
    built = {}
    for name, version in packages:
        spec = top / "SPECS" / f"{name}-{version}.spec"
        spec.write_text(SPEC_TEMPLATE.format(name=name, version=version))
        subprocess.run(
            [require_tool("rpmbuild"), "-bb", "--quiet", "--define", f"_topdir {top}", str(spec)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        built[(name, version)] = top / "RPMS" / "noarch" / f"{name}-{version}-1.noarch.rpm"
    return built


def dnf_root(workdir: Path, installed: Sequence[Package], offered: Sequence[Package], security: Package) -> Path:
    """An RPM node below ``workdir/root``: ``installed`` in its RPM database, a local repository
    offering ``offered`` with a security advisory for ``security``, and dnf's cache made (the
    test's doing: the collector itself always runs dnf with -C)."""
    built = rpms(workdir, [*installed, *offered])
    repo = workdir / "repo"
    repo.mkdir()
    for package in offered:
        shutil.copy(built[package], repo)
    subprocess.run([require_tool("createrepo_c"), "-q", str(repo)], check=True, capture_output=True, timeout=60)
    info = workdir / "updateinfo.xml"
    info.write_text(UPDATEINFO.format(advisory="TILLSYN-2026:0001", name=security[0], version=security[1]))
    subprocess.run(
        [require_tool("modifyrepo_c"), str(info), str(repo / "repodata")], check=True, capture_output=True, timeout=60
    )
    root = workdir / "root"
    for d in ("etc/yum.repos.d", "etc/dnf/vars", "var/lib/rpm"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "etc/yum.repos.d/test.repo").write_text(
        f"[tillsyn-test]\nname=Tillsyn test repository\nbaseurl=file://{repo}\ngpgcheck=0\nenabled=1\n"
    )
    (root / "etc/dnf/vars/releasever").write_text("9\n")  # no system-release package to read it from
    rpm = require_tool("rpm")
    subprocess.run([rpm, "--root", str(root), "--initdb"], check=True, capture_output=True, timeout=60)
    subprocess.run(
        [rpm, "--root", str(root), "-i", "--nodeps", "--nosignature", *(str(built[p]) for p in installed)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    subprocess.run(
        [require_tool("dnf"), "-q", f"--installroot={root}", "makecache"], check=True, capture_output=True, timeout=120
    )
    return root
