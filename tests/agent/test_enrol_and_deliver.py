"""The agent against a real centre process: enrol, deliver, and every way enrolment can go wrong."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from central.judging.own.rules import OWN_RULES
from tests.centre_process import ROOT, CentreProcess, free_port
from tests.shipped import shipped_rule_count
from tests.tls import self_signed

AGENT_CONFIG = ROOT / "config" / "agent.yaml"


def agent(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILLSYN_")}
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", "--config", str(AGENT_CONFIG), "--state-dir", str(state), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def centre(tmp_path: Path) -> Iterator[CentreProcess]:
    c = CentreProcess(tmp_path / "centre").start()
    yield c
    c.stop()


def test_enrol_then_deliver_one_collection(centre: CentreProcess, tmp_path: Path) -> None:
    state = tmp_path / "agent"
    enrolled = agent(state, "enroll", "--server", centre.url, "--token", centre.token())
    assert enrolled.returncode == 0, enrolled.stderr
    assert (state / "agent.key").stat().st_mode & 0o777 == 0o600
    assert "systemctl enable --now tillsyn-agent" in enrolled.stdout
    ran = agent(state, "run", "--once")
    assert ran.returncode == 0, ran.stderr
    assert "delivered 1, 0 waiting in the spool" in ran.stdout
    nodes = centre.get("/api/v1/nodes", centre.api_key())
    assert len(nodes) == 1 and nodes[0]["ledger_length"] == 1
    # Every rule of the policy has a verdict for the node; nothing unseen counts as passing.
    findings = centre.get(f"/api/v1/findings?node={nodes[0]['id']}", centre.api_key())
    # (besides them, the centre's duty round may already have judged its own measures for the node)
    of_policy = [f for f in findings if f["rule_id"] not in OWN_RULES]
    assert len(of_policy) == shipped_rule_count()
    assert len(findings) - len(of_policy) in (0, len(OWN_RULES))
    assert centre.cli("verify").returncode == 0
    # Enrolling again with the same key and machine is idempotent: same agent id.
    again = agent(state, "enroll", "--server", centre.url, "--token", centre.token())
    assert again.returncode == 0 and nodes[0]["id"] in again.stdout
    status = agent(state, "status")
    assert f"agent id:       {nodes[0]['id']}" in status.stdout
    assert "spool depth:    0 (dropped at the bound: 0)" in status.stdout
    assert "last delivery:  never" not in status.stdout
    assert "  ports " in status.stdout


def test_refused_token_is_a_clear_error(centre: CentreProcess, tmp_path: Path) -> None:
    result = agent(tmp_path / "a", "enroll", "--server", centre.url, "--token", "tse_not-a-real-token")
    assert result.returncode == 2
    assert "enrolment token refused: unknown token" in result.stderr
    assert "tillsyn-central token create" in result.stderr
    assert not (tmp_path / "a" / "enrolment.json").exists()


def test_expired_token(centre: CentreProcess, tmp_path: Path) -> None:
    token = centre.token("--ttl", "1s")
    time.sleep(1.5)
    result = agent(tmp_path / "a", "enroll", "--server", centre.url, "--token", token)
    assert result.returncode == 2 and "expired at" in result.stderr


def test_wrong_url_is_unreachable_not_a_crash(tmp_path: Path) -> None:
    """Exit 3, as for any centre that cannot be reached: a provisioning tool may try again (a
    refused token is 2: trying again cannot help)."""
    url = f"http://127.0.0.1:{free_port()}"
    result = agent(tmp_path / "a", "enroll", "--server", url, "--token", "tse_x")
    assert result.returncode == 3
    assert f"enrolment failed, not enrolled: {url}: unreachable" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "a" / "enrolment.json").exists()


def test_plain_http_to_another_host_is_refused(tmp_path: Path) -> None:
    result = agent(tmp_path / "a", "enroll", "--server", "http://tillsyn.example.net", "--token", "tse_x")
    assert result.returncode == 2
    assert "plain http is allowed only to a loopback address" in result.stderr


def test_not_enrolled_run_says_what_to_do(tmp_path: Path) -> None:
    result = agent(tmp_path / "a", "run", "--once")
    assert result.returncode == 2 and "tillsyn-agent enroll --server URL --token" in result.stderr


def test_tls_with_pinned_ca_and_untrusted_certificate(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    centre = CentreProcess(tmp_path / "centre")
    centre.config.write_text(
        f"state_dir: {centre.state}\nlisten: {{host: 127.0.0.1, port: {centre.port}, "
        f"tls_cert: {cert}, tls_key: {key}}}\n"
    )
    centre.scheme = "https"
    centre.start(verify=str(cert))
    try:
        untrusted = agent(tmp_path / "a", "enroll", "--server", centre.url, "--token", centre.token())
        assert untrusted.returncode == 2
        assert "TLS certificate not trusted" in untrusted.stderr and "--ca" in untrusted.stderr
        pinned = agent(tmp_path / "b", "enroll", "--server", centre.url, "--token", centre.token(), "--ca", str(cert))
        assert pinned.returncode == 0, pinned.stderr
        ran = agent(tmp_path / "b", "run", "--once")
        assert ran.returncode == 0 and "delivered 1" in ran.stdout, ran.stderr
    finally:
        centre.stop()
