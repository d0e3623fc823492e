"""Real repositories for the backup tests: restic and borg run as a backup job would run them."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Dict, List

PASSWORD = "correct horse battery staple\n"


def tool_env(base: Path, **extra: str) -> Dict[str, str]:
    """A clean environment for restic and borg, their state kept below ``base``."""
    env = {
        "PATH": "/usr/bin:/bin",
        "LC_ALL": "C",
        "HOME": str(base),
        "TZ": "UTC",
        "BORG_BASE_DIR": str(base / "borg-base"),
    }
    env.update(extra)
    return env


def run_tool(argv: List[str], env: Dict[str, str]) -> None:
    subprocess.run(argv, env=env, check=True, capture_output=True, timeout=60)


def restic_two_hosts(restic: str, base: Path) -> Path:
    """``base/restic``: one repository shared by two nodes, n2 (last backup 2026-11-19 10:00 UTC)
    and n1 (2026-11-20 10:00 UTC), password in ``base/password``, data in ``base/data``."""
    (base / "data").mkdir(exist_ok=True)
    (base / "data" / "file.txt").write_text("payload\n")
    (base / "password").write_text(PASSWORD)
    renv = tool_env(base, RESTIC_REPOSITORY=str(base / "restic"), RESTIC_PASSWORD_FILE=str(base / "password"))
    run_tool([restic, "init", "--no-cache"], renv)
    for when, host in (("2026-11-19 10:00:00", "n2"), ("2026-11-20 10:00:00", "n1")):
        run_tool([restic, "backup", "--no-cache", "--time", when, "--host", host, str(base / "data")], renv)
    return base / "restic"
