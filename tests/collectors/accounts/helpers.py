"""A test root whose accounts are made by the real shadow-utils (useradd --prefix), with login
records written by lastlog and utmpdump and keys made by ssh-keygen."""

from __future__ import annotations

import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, List, Optional

from collectors.accounts import SPEC
from collectors.base import Context
from collectors.settings import validate
from tests.conftest import require_root, require_tool

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)

BASE_PASSWD = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
BASE_SHADOW = "root:*:20000:0:99999:7:::\ndaemon:*:20000:0:99999:7:::\n"
BASE_GROUP = "root:x:0:\ndaemon:x:1:\nsudo:x:27:\n"
BASE_GSHADOW = "root:*::\ndaemon:*::\nsudo:*::\n"


def run(argv: List[str], stdin: Optional[str] = None) -> None:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{argv}: {done.stderr}"


def make_root(tmp: Path) -> Path:
    """A root with Debian's base accounts, an empty lastlog and wtmp; useradd is then run on it."""
    require_root("useradd --prefix writes passwd and shadow and chowns home directories")
    require_tool("useradd")
    root = tmp / "root"
    etc = root / "etc"
    (etc / "sudoers.d").mkdir(parents=True)
    (root / "home").mkdir()
    (root / "var" / "log").mkdir(parents=True)
    for name, text, mode in (
        ("passwd", BASE_PASSWD, 0o644),
        ("shadow", BASE_SHADOW, 0o640),
        ("group", BASE_GROUP, 0o644),
        ("gshadow", BASE_GSHADOW, 0o640),
        ("login.defs", "UID_MIN 1000\nUID_MAX 60000\nGID_MIN 1000\nGID_MAX 60000\n", 0o644),
    ):
        (etc / name).write_text(text)
        (etc / name).chmod(mode)
    (root / "var" / "log" / "lastlog").touch()
    (root / "var" / "log" / "wtmp").touch()
    return root


def useradd(root: Path, *args: str) -> None:
    run(["useradd", "--prefix", str(root), *args])


def add_key(root: Path, user: str, kind: str, bits: Optional[int], options: str = "") -> None:
    """A real key from ssh-keygen appended to the user's authorized_keys."""
    require_tool("ssh-keygen")
    home = root / "home" / user / ".ssh"
    home.mkdir(parents=True, exist_ok=True)
    key = home / f"id_{kind}_{bits}"
    run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            kind,
            *(["-b", str(bits)] if bits else []),
            "-N",
            "",
            "-C",
            f"{user}@laptop",
            "-f",
            str(key),
        ]
    )
    line = key.with_suffix(".pub").read_text().strip()
    with open(home / "authorized_keys", "a") as handle:
        handle.write(f"{options} {line}\n" if options else f"{line}\n")


def wtmp_login(root: Path, user: str, when: str) -> None:
    """One USER_PROCESS record, written by util-linux's utmpdump -r (its text format: fixed widths,
    a five-digit pid, else it stops with "Extraneous newline")."""
    require_tool("utmpdump")
    line = f"[7] [12345] [ts/0] [{user:<8}] [pts/0       ] [203.0.113.5         ] [203.0.113.5    ] [{when}]\n"
    done = subprocess.run(["utmpdump", "-r"], input=line.encode(), capture_output=True, check=True)
    with open(root / "var" / "log" / "wtmp", "ab") as handle:
        handle.write(done.stdout)


def context(root: Path, now: datetime = NOW, **settings: Any) -> Context:
    return Context(root=root, settings=validate(settings, SPEC.settings, "accounts"), now=lambda: now)
