"""What the export tests share: a failing telnet socket and ``tillsyn-central`` run against a test centre."""

from __future__ import annotations

import subprocess
from pathlib import Path

from central.runtime.service import Centre
from tests.central.conftest import cli_env, run_cli
from tests.central.judging.helpers import RULE, TELNET  # the telnet rule (M07) and a socket it fails on

__all__ = ["RULE", "TELNET", "cli"]


def cli(centre: Centre, tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """One ``tillsyn-central`` run on ``centre``'s database, with its own central.yaml in ``tmp_path``."""
    done: subprocess.CompletedProcess[str] = run_cli(cli_env(tmp_path, centre.config.db_url), list(argv))[0]
    return done
