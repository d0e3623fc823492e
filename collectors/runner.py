"""The one way Tillsyn runs a command: an argument list, no shell, a timeout, bounded output.

A missing binary, a timeout or a permission error is a result, never an
exception, so a collector can say "not present" or "could not see" with the reason.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

DEFAULT_TIMEOUT = 10.0
MAX_OUTPUT = 4 * 1024 * 1024

# Commands run with a fixed, C locale so their output parses the same everywhere.
_BASE_ENV = {"LC_ALL": "C", "LANG": "C", "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}


@dataclass(frozen=True)
class CommandResult:
    """What a command did. ``error`` is set when it did not run to completion."""

    argv: Sequence[str]
    returncode: Optional[int]
    stdout: bytes
    stderr: bytes
    error: Optional[str] = None
    """"not found", "permission denied", "timed out after 5.0 s", "output over N bytes"."""

    @property
    def ok(self) -> bool:
        return self.error is None and self.returncode == 0

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")

    def describe_failure(self, cause: str = "") -> str:
        """One line for a gap or error: which command, and what went wrong (stderr's last line,
        or its last line holding ``cause`` when one does: e.g. the line naming a device when the
        tool ends with a bare "Command failed.")."""
        name = os.path.basename(self.argv[0]) if self.argv else "?"
        if self.error is not None:
            return f"{name}: {self.error}"
        detail = [line.strip() for line in self.stderr.decode("utf-8", errors="replace").splitlines() if line.strip()]
        telling = [line for line in detail if cause and cause in line] or detail
        last = telling[-1][:300] if telling else "no message"
        return f"{name} exited with status {self.returncode}: {last}"


def run(
    argv: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    env: Optional[Mapping[str, str]] = None,
    stdin: Optional[bytes] = None,
    max_output: int = MAX_OUTPUT,
) -> CommandResult:
    """Run ``argv`` and capture its output, killing it after ``timeout`` seconds.

    ``env`` adds to a minimal C-locale environment; the caller's environment is not
    inherited, so secrets in it never reach the command by accident.
    """
    full_env = dict(_BASE_ENV)
    if env:
        full_env.update(env)
    try:
        proc = subprocess.Popen(  # noqa: S603 - argument list, never a shell
            list(argv),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            start_new_session=True,
        )
    except FileNotFoundError:
        return CommandResult(argv, None, b"", b"", "not found")
    except PermissionError:
        return CommandResult(argv, None, b"", b"", "permission denied")
    except OSError as err:
        return CommandResult(argv, None, b"", b"", f"could not start: {err.strerror or err}")
    return _communicate(proc, argv, timeout, stdin, max_output)


def _communicate(
    proc: subprocess.Popen[bytes],
    argv: Sequence[str],
    timeout: float,
    stdin: Optional[bytes],
    max_output: int,
) -> CommandResult:
    if proc.stdin is not None:
        try:
            proc.stdin.write(stdin or b"")
            proc.stdin.close()
        except BrokenPipeError:
            pass
    assert proc.stdout is not None and proc.stderr is not None
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    chunks = {out_fd: bytearray(), err_fd: bytearray()}
    deadline = time.monotonic() + timeout
    error: Optional[str] = None
    with selectors.DefaultSelector() as sel:
        sel.register(out_fd, selectors.EVENT_READ)
        sel.register(err_fd, selectors.EVENT_READ)
        while error is None and sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                error = f"timed out after {timeout:g} s"
                break
            for key, _ in sel.select(remaining):
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fd)
                    continue
                chunks[key.fd].extend(data)
                if len(chunks[key.fd]) > max_output:
                    error = f"output over {max_output} bytes"
                    break
    if error:
        _kill(proc)
    try:
        returncode: Optional[int] = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        _kill(proc)
        returncode = None
        error = error or f"timed out after {timeout:g} s"
    proc.stdout.close()
    proc.stderr.close()
    return CommandResult(
        argv, returncode, bytes(chunks[out_fd][:max_output]), bytes(chunks[err_fd][:max_output]), error
    )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=2)
