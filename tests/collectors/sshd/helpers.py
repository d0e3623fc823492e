"""A test root with an sshd configuration and a host key, so a real ``sshd -T`` can answer."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any, Dict

from collectors.base import Context
from collectors.settings import validate
from collectors.sshd import SPEC
from tests.conftest import require_root, require_tool


def sshd_binary() -> str:
    """The real sshd; it refuses ``-T`` without its privilege-separation directory /run/sshd,
    which the ssh service creates at start (RuntimeDirectory): made here when missing."""
    binary = require_tool("sshd")
    if not os.path.isdir("/run/sshd"):
        require_root("sshd -T needs /run/sshd, which only root can create")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    return binary


def make_root(tmp: Path, main: str, drop_ins: Dict[str, str] | None = None) -> Path:
    """``tmp/root`` with etc/ssh/sshd_config (``main``, {root} and {key} filled in) and drop-ins."""
    root = tmp / "root"
    ssh = root / "etc" / "ssh"
    (ssh / "sshd_config.d").mkdir(parents=True, exist_ok=True)
    key = ssh / "ssh_host_ed25519_key"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, capture_output=True)
    (ssh / "sshd_config").write_text(main.format(root=root, key=key))
    for name, text in (drop_ins or {}).items():
        (ssh / "sshd_config.d" / name).write_text(text.format(root=root, key=key))
    return root


def context(root: Path, **settings: Any) -> Context:
    """The collector on ``root``'s sshd_config, named by its full path: the Include lines hold
    full paths too, as sshd -T (which knows no moved root) needs them."""
    settings.setdefault("config_file", str(root / "etc" / "ssh" / "sshd_config"))
    return Context(root=Path("/"), settings=validate(settings, SPEC.settings, "sshd"))
