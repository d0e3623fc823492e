"""Hostile input against a real ``tillsyn-central serve``: bodies too large, JSON nested too deep,
evidence nested too deep to serve, and who may read /metrics (a NUL character: test_nul.py)."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
import requests

from agent.errors import TransportError
from agent.uplink.signed_http import Client
from central.api.read_routes import _json
from evidence.signing import sign
from tests.central.api.helpers import enrolled_node, peak_rss_kib, send_chunked, send_declared, serving
from tests.central.conftest import Node, evidence_record
from tests.centre_process import CentreProcess

SENT = 50 * 1024 * 1024
"""Bytes each oversized chunked request tries to send."""
DEEP = b"[" * 1000 + b"]" * 1000


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CentreProcess]:
    with serving(CentreProcess(tmp_path_factory.mktemp("edge") / "centre")) as centre:
        yield centre


def _log(centre: CentreProcess) -> str:
    return (centre.state / "central.log").read_text()


def test_large_bodies_are_refused_while_read_and_memory_does_not_grow(served: CentreProcess) -> None:
    assert served.proc is not None
    for warm_up in ("/api/v1/session", "/api/v1/windows"):  # code paths loaded before the peak is read
        requests.post(served.url + warm_up, json={"username": "x", "password": "y"}, timeout=10)
    before = peak_rss_kib(served.proc.pid)
    answers = {}
    for path, kind in [
        ("/api/v1/session", "application/json"),
        ("/api/v1/windows", "application/json"),
        ("/api/v1/enrol", "application/json"),
        ("/login", "application/x-www-form-urlencoded"),
        ("/api/v1/reports", "application/json"),  # the agents' path: its own, larger limit
        ("/api/v1/heartbeat", "application/json"),
    ]:
        answer, sent = send_chunked(served.port, path, SENT, kind)
        answers[path] = sent
        assert answer.startswith(b"HTTP/1.1 413 "), (path, answer[:300])
        assert b'"too_large"' in answer, answer
        assert sent < SENT, f"{path}: the whole {sent} bytes were read before the refusal"
    declared = send_declared(served.port, "/api/v1/session", 100 * 1024 * 1024)
    assert declared.startswith(b"HTTP/1.1 413 ") and b"104857600 bytes is over the limit of 65536" in declared
    after = peak_rss_kib(served.proc.pid)
    print(f"peak RSS {before} KiB before, {after} KiB after; bytes sent before each 413: {answers}", file=sys.stderr)
    assert after - before < 16 * 1024, f"peak RSS grew by {after - before} KiB for {len(answers) * SENT} bytes sent"
    assert requests.get(served.url + "/livez", timeout=10).status_code == 200


def test_json_nested_too_deep_is_400_malformed_everywhere(served: CentreProcess) -> None:
    node = enrolled_node(served)
    key = served.api_key()
    answers = {
        "enrol": requests.post(served.url + "/api/v1/enrol", data=DEEP, timeout=10),
        "session": requests.post(served.url + "/api/v1/session", data=DEEP, timeout=10),
        "windows": requests.post(
            served.url + "/api/v1/windows", data=DEEP, headers={**key, "Content-Type": "application/json"}, timeout=10
        ),
        "reports": node.send(raw=DEEP),
        "heartbeat": node.client.post(
            "/api/v1/heartbeat",
            content=DEEP,
            headers={"X-Tillsyn-Agent": node.agent_id, "X-Tillsyn-Signature": _sign(node, DEEP)},
        ),
    }
    for where, answer in answers.items():
        assert answer.status_code == 400, (where, answer.text)
        assert answer.json()["error"] == "malformed", (where, answer.text)
        assert "nested more than 64 levels deep" in answer.json()["message"], (where, answer.text)
    assert "RecursionError" not in _log(served) and "Traceback" not in _log(served)


def _sign(node: Node, body: bytes) -> str:
    return sign(node.key, body)


def _nested(levels: int) -> Dict[str, Any]:
    inner: Any = "bottom"
    for _ in range(levels):
        inner = {"deeper": inner}
    return inner  # type: ignore[no-any-return]


def test_evidence_nested_too_deep_is_refused_for_good_and_the_node_still_served(
    served: CentreProcess, tmp_path: Path
) -> None:
    node = enrolled_node(served)
    key = served.api_key()
    assert node.send(node.report(evidence_record("ports", {"sockets": []}))).status_code == 200
    deep = node.report(evidence_record("ports", _nested(300)))
    refused = node.send(deep)
    assert refused.status_code == 400, refused.text
    assert refused.json() == {
        "error": "malformed",
        "message": "reports[0]: arrays and objects nested more than 64 levels deep",
        "index": 0,
    }
    # The agent's own client reads this answer as final: the report goes to spool/rejected, not retried.
    agent = Client(served.url, node.key, node.agent_id)
    body = json.dumps({"reports": [{"body": deep["body"], "signature": deep["signature"]}]}).encode()
    with pytest.raises(TransportError) as caught:
        agent.post("/api/v1/reports", body)
    assert caught.value.retry is False and caught.value.body["index"] == 0
    agent.close()
    shown = requests.get(f"{served.url}/api/v1/nodes/{node.agent_id}", headers=key, timeout=10)
    assert shown.status_code == 200, shown.text


def test_evidence_stored_before_the_limit_is_still_served() -> None:
    # A row nested 300 deep (accepted before the ingest limit existed) is past orjson's and
    # pydantic's depth; the read API answers it anyway, with times as FastAPI writes them.
    value = {"at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "observed": _nested(300)}
    data = json.loads(_json(value))
    assert data["at"] == "2026-01-02T03:04:05Z"
    depth, inner = 0, data["observed"]
    while isinstance(inner, dict):
        depth, inner = depth + 1, inner["deeper"]
    assert (depth, inner) == (300, "bottom")


def test_metrics_are_for_loopback_or_the_configured_token(served: CentreProcess, tmp_path: Path) -> None:
    assert served.get("/livez", {}) == {"status": "ok"}  # type: ignore[comparison-overlap]
    local = requests.get(served.url + "/metrics", timeout=10)
    assert local.status_code == 200 and "tillsyn_nodes" in local.text  # loopback, by default
    # a client elsewhere, as a reverse proxy on this host tells it (uvicorn trusts 127.0.0.1's header)
    elsewhere = requests.get(served.url + "/metrics", headers={"X-Forwarded-For": "192.0.2.7"}, timeout=10)
    assert elsewhere.status_code == 401 and "tillsyn_nodes" not in elsewhere.text
    assert elsewhere.json()["message"] == (
        "/metrics needs a request from this machine (central.yaml, docs/operations.md)"
    ), elsewhere.text
    token = tmp_path / "metrics.token"
    token.write_text("a-long-random-metrics-token\n")
    closed = CentreProcess(
        tmp_path / "closed", extra_yaml=f"metrics: {{bearer_token_file: {token}, loopback: false}}\n"
    )
    closed.cli("db", "upgrade")
    closed.start()
    try:
        anyone = requests.get(closed.url + "/metrics", timeout=10)
        assert anyone.status_code == 401, anyone.text
        assert anyone.json()["message"].startswith("/metrics needs the bearer token of metrics.bearer_token_file")
        assert anyone.headers["www-authenticate"].startswith("Bearer")
        wrong = requests.get(closed.url + "/metrics", headers={"Authorization": "Bearer nope"}, timeout=10)
        assert wrong.status_code == 401
        right = requests.get(
            closed.url + "/metrics", headers={"Authorization": "Bearer a-long-random-metrics-token"}, timeout=10
        )
        assert right.status_code == 200 and "tillsyn_nodes" in right.text
        # the API's description stays public, by the choice docs/operations.md states
        assert requests.get(closed.url + "/openapi.json", timeout=10).json()["info"]["title"] == "Tillsyn centre"
        assert requests.get(closed.url + "/docs", timeout=10).status_code == 200
    finally:
        closed.stop()
