"""The one subprocess runner: real commands, real timeouts, bounded output."""

from __future__ import annotations

import sys
import time

from collectors.runner import run


def test_captures_output_and_status() -> None:
    result = run([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"])
    assert result.returncode == 3
    assert result.stdout == b"out\n"
    assert result.stderr == b"err\n"
    assert not result.ok
    assert result.describe_failure().endswith("exited with status 3: err")


def test_missing_binary_is_a_result_not_an_exception() -> None:
    result = run(["/nonexistent/tillsyn-no-such-tool", "--version"])
    assert result.error == "not found"
    assert result.returncode is None
    assert result.describe_failure() == "tillsyn-no-such-tool: not found"


def test_timeout_kills_the_command_and_its_children() -> None:
    started = time.monotonic()
    # The shell's child sleep must die too (the runner kills the whole process group).
    result = run(["sh", "-c", "sleep 30 & sleep 30"], timeout=0.3)
    assert result.error == "timed out after 0.3 s"
    assert time.monotonic() - started < 5


def test_output_is_bounded() -> None:
    result = run([sys.executable, "-c", "print('x' * 100000)"], max_output=1000)
    assert result.error == "output over 1000 bytes"
    assert len(result.stdout) == 1000


def test_environment_is_minimal_and_c_locale(monkeypatch: object) -> None:
    import os

    os.environ["TILLSYN_SECRET_FOR_TEST"] = "hunter2"
    try:
        result = run(["env"], env={"EXTRA": "1"})
    finally:
        del os.environ["TILLSYN_SECRET_FOR_TEST"]
    lines = set(result.text.splitlines())
    assert "LC_ALL=C" in lines
    assert "EXTRA=1" in lines
    assert not any("hunter2" in line for line in lines)


def test_stdin_is_passed() -> None:
    result = run(["cat"], stdin=b"hello")
    assert result.ok and result.stdout == b"hello"
