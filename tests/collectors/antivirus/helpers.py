"""Shared set-up for the antivirus tests: fake node trees and a real clamd on a private socket."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, Optional

from collectors.antivirus import SPEC
from collectors.base import Context
from collectors.settings import validate
from tests.conftest import FIXTURES

FIX = FIXTURES / "antivirus"
# A body signature (clamav signatures(5), .ndb: Name:TargetType:Offset:HexSignature) for a
# test string only, so clamd loads in about a second and nothing real is detected.
TEST_NDB = "Tillsyn.Test.Signature:0:*:54494c4c53594e2d544553542d5349474e4154555245\n"


def make_tree(root: Path, files: Optional[Dict[str, Any]] = None) -> Path:
    """A node's filesystem below ``root``: {"/abs/path": text, bytes, or a fixture Path}."""
    root.mkdir(parents=True, exist_ok=True)
    for absolute, content in (files or {}).items():
        target = root / absolute.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, target)
        elif isinstance(content, bytes):
            target.write_bytes(content)
        elif content is None:
            target.mkdir(exist_ok=True)
        else:
            target.write_text(content)
    return root


def context(root: Path, **settings: Any) -> Context:
    return Context(root=root, settings=validate(settings, SPEC.settings, "collectors.antivirus"))


def start_clamd(clamd: str, workdir: Path, socket_path: Path) -> subprocess.Popen[bytes]:
    """A real clamd with a one-signature database, listening only on ``socket_path``."""
    db = workdir / "db"
    db.mkdir(parents=True, exist_ok=True)
    (db / "tillsyn-test.ndb").write_text(TEST_NDB)
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    conf = workdir / "clamd.conf"
    conf.write_text(
        f"LocalSocket {socket_path}\nDatabaseDirectory {db}\nForeground yes\n"
        f"PidFile {workdir / 'clamd.pid'}\nLogFile {workdir / 'clamd.log'}\n"
        "Bytecode false\nSelfCheck 0\nLogSyslog false\n"
    )
    proc = subprocess.Popen([clamd, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = (workdir / "clamd.log").read_text() if (workdir / "clamd.log").exists() else ""
            raise RuntimeError(f"clamd exited with {proc.returncode}: {log[-500:]}")
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(1)
                sock.connect(str(socket_path))
                sock.sendall(b"zPING\0")
                if sock.recv(16).startswith(b"PONG"):
                    return proc
        except OSError:
            time.sleep(0.05)
    stop(proc)
    raise RuntimeError("clamd did not answer PING within 20 s")


def stop(proc: subprocess.Popen[bytes], hard: bool = False) -> None:
    if proc.poll() is None:
        if hard:
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def clamd_engine_version(clamd: str) -> str:
    """``clamd --version`` prints ``ClamAV 1.4.6`` (or ``ClamAV 1.4.6/<db>/<date>``)."""
    out = subprocess.run(
        [clamd, "--version"],
        check=True,
        capture_output=True,
        text=True,
        timeout=10,
        env={"PATH": os.environ.get("PATH", "")},
    ).stdout
    return out.split()[1].split("/")[0]
