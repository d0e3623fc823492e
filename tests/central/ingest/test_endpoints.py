"""The agents' requests served ahead of FastAPI (central/ingest/endpoints.py): what is not the
happy path — a failure inside, a client gone before its body, other methods and paths."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List

import pytest
from fastapi.testclient import TestClient

from central.api.app import create_app
from central.runtime.service import Centre
from tests.central.conftest import Node, evidence_record, snapshot


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


def test_a_large_batch_is_checked_off_the_event_loop_and_stored(
    client: TestClient, centre: Centre, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A spool emptied in one batch (over INLINE_BYTES) is checked and parsed in a worker thread; a
    small request's signatures are checked in the signature thread."""
    import threading

    from central.ingest import endpoints, signature_thread

    parsed_in: List[str] = []
    checked_in: List[str] = []
    parse, check = endpoints.parse_signed, signature_thread.first_failure

    def watched_parse(*args: Any) -> Any:
        parsed_in.append(threading.current_thread().name)
        return parse(*args)

    def watched_check(*args: Any) -> Any:
        checked_in.append(threading.current_thread().name)
        return check(*args)

    monkeypatch.setattr(endpoints, "parse_signed", watched_parse)
    monkeypatch.setattr(signature_thread, "first_failure", watched_check)
    monkeypatch.setattr(endpoints, "first_failure", watched_check)
    filler = {"sockets": [{"port": p, "note": "x" * 200} for p in range(40)]}
    small = node.send(node.report(evidence_record(observed={"sockets": []})))
    batch = [node.report(evidence_record(observed=filler)) for _ in range(12)]
    large = node.send(*batch)
    assert small.status_code == 200 and large.status_code == 200, large.text
    assert len(large.json()["stored"]) == 12
    assert len(large.request.content) > endpoints.INLINE_BYTES
    assert parsed_in[0] != parsed_in[1] and parsed_in[1].startswith("tillsyn-ingest")
    # small: the report's signature in the signature thread (the node's first request is checked where
    # its key is looked up); large: the request's and the reports' signatures in a worker thread,
    # so that a spool emptied at once does not hold up every heartbeat's check
    assert checked_in[0] == "tillsyn-verifier"
    assert len(checked_in) == 3 and all(name.startswith("tillsyn-ingest") for name in checked_in[1:])


def test_a_key_that_is_not_the_nodes_is_refused_even_when_this_process_believed_it(
    client: TestClient, centre: Centre, node: Node
) -> None:
    """Defence in depth: the reports were checked with the key kept in memory; if the node's row says
    otherwise, nothing is stored (an id's key never changes, so this means something is wrong)."""
    from evidence.signing import new_private_key, public_key_text

    impostor = new_private_key()
    centre.agent_keys[node.agent_id] = public_key_text(impostor)
    real, node.key = node.key, impostor  # request and report signed alike with the believed key
    envelope = node.report()
    node.key = real
    before = snapshot(centre)
    answer = node.send(envelope, key=impostor)
    assert answer.status_code == 401 and answer.json()["error"] == "bad_signature"
    assert snapshot(centre) == before
