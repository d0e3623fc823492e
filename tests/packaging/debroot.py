"""Clean Debian roots for the package tests: one ``debootstrap --variant=minbase`` per release, kept as
a tarball outside the repository (``$TILLSYN_ROOT_CACHE`` or /var/cache/tillsyn-tests), unpacked
afresh for each test session.

The mirror is the one this machine's own apt uses (``apt-get indextargets``), read at run time.
A chroot has no systemd as PID 1: the tests run the commands a unit would, never a fake init.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Dict, List, Optional

CACHE = Path(os.environ.get("TILLSYN_ROOT_CACHE", "/var/cache/tillsyn-tests"))


def host_mirror() -> str:
    """The Debian archive this machine's apt reads its main suite from (not the security archive)."""
    out = subprocess.run(
        ["apt-get", "indextargets", "--format", "$(SITE) $(RELEASE) $(TARGET_OF)", "Created-By: Packages"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    sites = [line.split()[0] for line in out.splitlines() if line.split()[1:2] and "-" not in line.split()[1]]
    if not sites:
        raise RuntimeError("apt-get indextargets names no Debian suite: run apt-get update first")
    return sites[0].rstrip("/")


def tarball(release: str, mirror: Optional[str] = None) -> Path:
    """The cached minbase root of ``release`` (bookworm, trixie), made once."""
    CACHE.mkdir(parents=True, exist_ok=True)
    cached = CACHE / f"debian-{release}-minbase.tar.gz"
    if cached.exists():
        return cached
    work = CACHE / f"{release}.build"
    shutil.rmtree(work, ignore_errors=True)
    subprocess.run(
        ["debootstrap", "--variant=minbase", release, str(work), mirror or host_mirror()],
        check=True,
        capture_output=True,
        timeout=1800,
    )
    partial = cached.with_suffix(".partial")
    with tarfile.open(partial, "w:gz") as tar:
        tar.add(work, arcname=".")
    partial.rename(cached)
    shutil.rmtree(work)
    return cached


class Chroot:
    """A Debian root unpacked from a cached tarball, with /proc, /sys and /dev mounted while in use."""

    MOUNTS = (("proc", "proc", ["-t", "proc"]), ("sys", "sys", ["-t", "sysfs"]), ("/dev", "dev", ["--bind"]))

    def __init__(self, path: Path, release_tarball: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        subprocess.run(["tar", "-C", str(path), "-xzf", str(release_tarball)], check=True, timeout=600)
        shutil.copy("/etc/resolv.conf", path / "etc" / "resolv.conf")
        # no service starts from a package script: there is no init here (invoke-rc.d asks this)
        policy = path / "usr" / "sbin" / "policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        self.mounted: List[Path] = []
        for source, target, how in self.MOUNTS:
            subprocess.run(["mount", *how, source, str(path / target)], check=True, timeout=60)
            self.mounted.append(path / target)

    def run(
        self, *args: str, check: bool = True, env: Optional[Dict[str, str]] = None, timeout: float = 900
    ) -> subprocess.CompletedProcess[str]:
        base = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        base["DEBIAN_FRONTEND"] = "noninteractive"
        proc = subprocess.run(
            ["chroot", str(self.path), *args],
            env={**base, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            tail = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            raise AssertionError(f"{' '.join(args)}: exit {proc.returncode}\n{tail}")
        return proc

    def popen(self, *args: str, log: Path) -> subprocess.Popen[bytes]:
        with open(log, "wb") as out:
            return subprocess.Popen(
                ["chroot", str(self.path), *args],
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def close(self) -> None:
        for target in reversed(self.mounted):
            subprocess.run(["umount", "-l", str(target)], check=False, timeout=60)
        still = [str(t) for t in self.mounted if os.path.ismount(t)]
        if still:  # never delete below a mount point: /dev is the host's own
            raise RuntimeError(f"still mounted, root left in place: {', '.join(still)}")
        self.mounted.clear()
        shutil.rmtree(self.path, ignore_errors=True)


if __name__ == "__main__":  # warm the cache: python3 -m tests.packaging.debroot bookworm trixie
    import sys

    for name in sys.argv[1:]:
        print(tarball(name))
