"""The agents' requests served ahead of FastAPI (central/api/ingest_path.py): what is not the
happy path — a failure inside, a client gone before its body, other methods and paths."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List

import pytest
from fastapi.testclient import TestClient

from central.api.app import create_app
from central.service import Centre
from tests.central.conftest import Node


def test_an_internal_failure_is_a_500_with_a_json_body_and_the_next_request_works(
    client: TestClient, centre: Centre, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("database on fire")

    with monkeypatch.context() as patch:
        patch.setattr(centre, "write_together", broken)
        failed = node.heartbeat()
    assert failed.status_code == 500
    assert failed.json()["error"] == "internal"
    assert "fire" not in failed.text  # the cause goes to the log, not to the client
    assert node.heartbeat().status_code == 200


def test_a_client_gone_before_its_body_gets_no_answer_and_nothing_is_stored(centre: Centre) -> None:
    app = create_app(centre, duties=False)
    sent: List[Dict[str, Any]] = []

    async def receive() -> Dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/v1/heartbeat", "headers": []}
    asyncio.run(app(scope, receive, send))
    assert sent == []
    assert centre.writer is None  # nothing reached the database


def test_other_methods_and_paths_go_to_the_framework(client: TestClient) -> None:
    assert client.get("/api/v1/heartbeat").status_code in (404, 405)
    assert client.post("/api/v1/heartbeats", content=b"{}").status_code == 404
    assert client.get("/livez").json() == {"status": "ok"}


def test_content_length_that_is_not_a_number_is_refused(client: TestClient, node: Node) -> None:
    answer = client.post(
        "/api/v1/heartbeat", content=b"{}", headers={"Content-Length": "2x", "X-Tillsyn-Agent": node.agent_id}
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "malformed"
