"""schemathesis against a real ``tillsyn-central serve``, from its own /openapi.json, with an
administrator's API key, on SQLite and on PostgreSQL (which refuses what SQLite takes, such as a
NUL in text): no request it generates may get a 5xx, and every status answered must be one the
document describes (so every refusal is documented).  Bounded: a few examples per operation and
at most 75 s of generation per database, on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.central.api.helpers import enrolled_node
from tests.central.conftest import evidence_record
from tests.centre_process import CentreProcess

ST = Path(sys.executable).with_name("st")
MAX_SECONDS = 75


@pytest.mark.skipif(
    not ST.exists() and not os.environ.get("CI"), reason="schemathesis is not installed (pip install -e '.[dev]')"
)
def test_no_generated_request_gets_a_5xx_or_an_undocumented_status(tmp_path: Path, database_url: str) -> None:
    centre = CentreProcess(tmp_path / "centre", database_url=database_url)
    centre.cli("db", "upgrade")
    key = centre.cli("apikey", "create", "schemathesis").stdout.strip()
    centre.start()
    try:
        node = enrolled_node(centre)  # one node with a finding, so reads have something to return
        assert node.send(node.report(evidence_record("ports", {"sockets": []}))).status_code == 200
        run = subprocess.run(
            [
                str(ST),
                "run",
                f"{centre.url}/openapi.json",
                "--header",
                f"Authorization: Bearer {key}",
                "--checks",
                "not_a_server_error,status_code_conformance",
                "--max-examples",
                "10",
                "--max-time",
                str(MAX_SECONDS),
                "--seed",
                "16",
                "--generation-database",
                "none",
                "--workers",
                "1",
                "--no-color",
                "--request-timeout",
                "20",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=MAX_SECONDS + 120,
            check=False,
        )
        summary = run.stdout[run.stdout.find("=== SUMMARY") :] if "=== SUMMARY" in run.stdout else run.stdout[-3000:]
        print(summary, file=sys.stderr)
        assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    finally:
        centre.stop()
        shutil.rmtree(tmp_path / "schemathesis-report", ignore_errors=True)
    log = (centre.state / "central.log").read_text()
    assert "Traceback" not in log, log[-4000:]
