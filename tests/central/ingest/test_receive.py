"""Report and heartbeat ingest on both databases: every refusal stores nothing; storage is exactly once."""

from __future__ import annotations

import base64
import json
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, Iterator, List, Tuple

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from central.db.engine import write_tx
from central.db.schema import agents, reports
from central.enrolment import revoke_agent
from central.ingest import receive
from central.ingest.ledger import GENESIS, body_hash, entry_hash
from central.runtime.service import Centre
from evidence.signing import b64, new_private_key, sign
from evidence.wire import canonical
from tests.central.conftest import Node, decode, evidence_record, new_token, snapshot


def signed(node: Node, data: Dict[str, Any], key: Any = None) -> Dict[str, Any]:
    """An envelope around an arbitrary report dict, signed by ``key`` (default: the node's)."""
    body = canonical(data)
    return {"report_id": data.get("report_id"), "body": b64(body), "signature": sign(key or node.key, body)}


def raw_body(node: Node, record: Dict[str, Any]) -> Dict[str, Any]:
    """A report whose one record is written as given, with the text ``"INF"`` turned into ``1e400``
    (a number Python's JSON reads as infinity)."""
    data = decode(node.report(seq=node.seq + 1))
    data["evidence"] = [record]
    body = canonical(data).replace(b'"INF"', b"1e400")
    return {"report_id": data["report_id"], "body": b64(body), "signature": sign(node.key, body)}


def changed(node: Node, **fields: Any) -> Dict[str, Any]:
    """A fresh report of ``node`` (not counted in its sequence) with some fields replaced."""
    data = decode(node.report(seq=node.seq + 1))
    data.update(fields)
    return signed(node, data)


def _chain(centre: Centre, agent_id: str) -> List[Tuple[int, int, str, str]]:
    with centre.engine.connect() as conn:
        rows = conn.execute(
            select(reports.c.chain_index, reports.c.seq, reports.c.report_id, reports.c.entry_hash)
            .where(reports.c.agent_id == agent_id)
            .order_by(reports.c.chain_index)
        )
        return [tuple(r) for r in rows]


def _refused(response: Any, status: int, error: str, words: str) -> Dict[str, Any]:
    assert response.status_code == status, response.text
    data: Dict[str, Any] = response.json()
    assert data["error"] == error, data
    assert words in data["message"], data
    return data


def test_report_refusals_store_nothing(client: TestClient, centre: Centre, node: Node) -> None:
    first = node.report()
    assert node.send(first).json()["stored"] == [first["report_id"]]
    other = Node(client, hostname="other")
    other.enrol(new_token(centre))
    before = snapshot(centre)
    stored = decode(first)
    future = datetime.now(timezone.utc) + timedelta(minutes=10)
    evidence = stored["evidence"][0]
    cases: List[Tuple[str, Callable[[], Any], int, str, str]] = [
        (
            "unknown agent",
            lambda: node.send(node.report(seq=9), agent_id="nosuchagent"),
            401,
            "unknown_agent",
            "nosuch",
        ),
        (
            "no headers",
            lambda: client.post("/api/v1/reports", content=json.dumps({"reports": []})),
            401,
            "unsigned",
            "missing X-Tillsyn-Agent or X-Tillsyn-Signature header",
        ),
        (
            "no signature header",
            lambda: client.post("/api/v1/reports", content=b"{}", headers={"X-Tillsyn-Agent": node.agent_id}),
            401,
            "unsigned",
            "X-Tillsyn-Signature",
        ),
        (
            "request signed by another key",
            lambda: node.send(node.report(seq=9), key=new_private_key()),
            401,
            "bad_signature",
            "request signature: signature does not match",
        ),
        (
            "request signed by another node, under its own id",
            lambda: node.send(node.report(seq=9), key=other.key),
            401,
            "bad_signature",
            "request signature",
        ),
        (
            "report signature wrong",
            lambda: node.send(signed(node, decode(node.report(seq=9)), key=new_private_key())),
            401,
            "bad_signature",
            "reports[0]: signature does not match",
        ),
        ("malformed JSON", lambda: node.send(raw=b'{"reports": ['), 400, "malformed", "not valid JSON"),
        ("not an object", lambda: node.send(raw=b"[1]"), 400, "malformed", "an object with a 'reports' list"),
        ("reports not a list", lambda: node.send(raw=b'{"reports": {}}'), 400, "malformed", "'reports' list"),
        ("empty batch", node.send, 400, "malformed", "'reports' is empty"),
        ("too many", lambda: node.send(*[first] * 201), 413, "too_large", "201 reports in one batch; at most 200"),
        (
            "item without body",
            lambda: node.send(raw=json.dumps({"reports": [{"signature": "x"}]}).encode()),
            400,
            "malformed",
            "reports[0] must be an object with string 'body' and 'signature'",
        ),
        (
            "body not base64",
            lambda: node.send({"body": "***", "signature": first["signature"]}),
            400,
            "malformed",
            "reports[0].body is not base64",
        ),
        ("seq as string", lambda: node.send(changed(node, seq="2")), 400, "malformed", "seq: expected int, got str"),
        ("seq zero", lambda: node.send(changed(node, seq=0)), 400, "malformed", "seq: must be a positive integer"),
        ("seq as bool", lambda: node.send(changed(node, seq=True)), 400, "malformed", "seq: expected int, got bool"),
        (
            "evidence not a list",
            lambda: node.send(changed(node, evidence={"a": 1})),
            400,
            "malformed",
            "evidence: expected list, got dict",
        ),
        (
            "unknown evidence status",
            lambda: node.send(changed(node, evidence=[{**evidence, "status": "fine"}])),
            400,
            "malformed",
            "reports[0].evidence[0]: 'fine' is not a valid Status",
        ),
        (
            "evidence lacks a field",
            lambda: node.send(changed(node, evidence=[{k: v for k, v in evidence.items() if k != "observed"}])),
            400,
            "malformed",
            "evidence[0]: evidence lacks field 'observed'",
        ),
        (
            "bad collection time",
            lambda: node.send(changed(node, collected_at="yesterday")),
            400,
            "malformed",
            "collected_at: not an RFC 3339 time with zone",
        ),
        (
            "NaN duration (PostgreSQL cannot store it)",
            lambda: node.send(changed(node, evidence=[{**evidence, "duration_ms": float("nan")}])),
            400,
            "malformed",
            "reports[0]: not valid JSON: NaN is not JSON",
        ),
        (
            "an infinite number deep in observed",
            lambda: node.send(raw_body(node, {**evidence, "observed": {"ups": [{"charge": "INF"}]}})),
            400,
            "malformed",
            "reports[0]: not valid JSON: number 1e400 is out of range",
        ),
        (
            "collector name too long for the column",
            lambda: node.send(changed(node, evidence=[{**evidence, "collector": "c" * 65}])),
            400,
            "malformed",
            "reports[0].evidence[0].collector: must be 1-64 of",
        ),
        (
            "collector name with a NUL",
            lambda: node.send(changed(node, evidence=[{**evidence, "collector": "po\x00rts"}])),
            400,
            "malformed",
            "reports[0]: a string contains a NUL character",
        ),
        (
            "a NUL in a collector's error, which would become a finding's message",
            lambda: node.send(changed(node, evidence=[{**evidence, "status": "error", "error": "boom\x00"}])),
            400,
            "malformed",
            "reports[0]: a string contains a NUL character",
        ),
        (
            "a time with no UTC form",
            lambda: node.send(changed(node, collected_at="0001-01-01T00:00:00+05:00")),
            400,
            "malformed",
            "reports[0].collected_at: not an RFC 3339 time with zone",
        ),
        ("other protocol version", lambda: node.send(changed(node, v=2)), 400, "malformed", "unsupported protocol"),
        (
            "report of another agent, signed by me",
            lambda: node.send(changed(node, agent_id=other.agent_id)),
            400,
            "malformed",
            f"report of agent {other.agent_id}, sent by {node.agent_id}",
        ),
        (
            "report of another agent, signed by it",
            lambda: node.send(other.report(seq=1)),
            401,
            "bad_signature",
            "reports[0]",
        ),
        (
            "replayed sequence under a new report id",
            lambda: node.send(node.report(seq=1)),
            409,
            "replay",
            "sequence 1 is not after the last stored 1",
        ),
        (
            "same report id, other content",
            lambda: node.send(changed(node, report_id=first["report_id"], agent_version="evil")),
            409,
            "conflict",
            f"report {first['report_id']} was stored with other content",
        ),
        (
            "collected in the future",
            lambda: node.send(node.report(seq=2, collected_at=future)),
            400,
            "clock",
            "is in the future; check the node's clock (NTP)",
        ),
        (
            "a good report, then a bad one: the whole batch is refused",
            lambda: node.send(node.report(seq=2), node.report(seq=2)),
            409,
            "replay",
            "reports[1]: sequence 2 is not after the last stored 2",
        ),
    ]
    for name, send, status, error, words in cases:
        data = _refused(send(), status, error, words)
        if name.startswith("a good report"):
            assert data["index"] == 1
        assert snapshot(centre) == before, name
    # Refusals are counted by reason for /metrics.
    expected = Counter(error for _, _, _, error, _ in cases)
    scraped = TestClient(client.app, client=("127.0.0.1", 50000)).get("/metrics").text  # loopback may read
    counted = {
        sample.labels["reason"]: sample.value
        for family in text_string_to_metric_families(scraped)
        for sample in family.samples
        if sample.name == "tillsyn_requests_rejected_total" and sample.labels["endpoint"] == "reports"
    }
    assert counted == {reason: float(n) for reason, n in expected.items()}
    # Within the allowed clock skew a report from slightly ahead is fine.
    ahead = node.report(seq=2, collected_at=datetime.now(timezone.utc) + timedelta(seconds=60))
    assert node.send(ahead).json()["stored"] == [ahead["report_id"]]


def test_a_revoked_agent_is_refused(client: TestClient, centre: Centre, node: Node) -> None:
    assert node.send(node.report()).status_code == 200
    with write_tx(centre.engine) as conn:
        assert revoke_agent(conn, node.agent_id, datetime.now(timezone.utc))
    before = snapshot(centre)
    data = _refused(node.send(node.report()), 403, "revoked", f"agent {node.agent_id} was revoked")
    assert "enrol the node again" in data["hint"]
    _refused(node.heartbeat(), 403, "revoked", "was revoked")
    assert snapshot(centre) == before


def _chunks(data: bytes, size: int = 65536) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_a_body_over_the_limit_is_refused_with_or_without_content_length(
    client: TestClient, centre: Centre, node: Node
) -> None:
    limit = centre.config.limits.max_body_bytes
    padding = "x" * (limit + 1)
    big = node.report(evidence_record("ports", {"pad": padding}))
    body = json.dumps({"reports": [{"body": big["body"], "signature": big["signature"]}]}).encode()
    headers = {"X-Tillsyn-Agent": node.agent_id, "X-Tillsyn-Signature": sign(node.key, body)}
    before = snapshot(centre)
    declared = client.post("/api/v1/reports", content=body, headers=headers)
    _refused(declared, 413, "too_large", f"bytes is over the limit of {limit}")
    chunked = client.post("/api/v1/reports", content=_chunks(body), headers=headers)
    _refused(chunked, 413, "too_large", f"request body is over the limit of {limit} bytes")
    lying = client.post("/api/v1/reports", content=body, headers={**headers, "Content-Length": "x1"})
    assert lying.status_code in (400, 413)
    assert snapshot(centre) == before
    # A body just under the limit, sent chunked, is stored.
    ok = node.report(evidence_record("ports", {"pad": "x" * (limit // 2)}), seq=node.seq)
    body = json.dumps({"reports": [{"body": ok["body"], "signature": ok["signature"]}]}).encode()
    headers = {"X-Tillsyn-Agent": node.agent_id, "X-Tillsyn-Signature": sign(node.key, body)}
    assert len(body) < limit
    response = client.post("/api/v1/reports", content=_chunks(body), headers=headers)
    assert response.status_code == 200 and response.json()["stored"] == [ok["report_id"]], response.text


def test_delivery_is_at_least_once_and_storage_exactly_once(client: TestClient, centre: Centre, node: Node) -> None:
    batch = [node.report(), node.report(), node.report()]
    ids = [e["report_id"] for e in batch]
    first = node.send(*batch)
    assert first.json() == {"stored": ids, "duplicates": [], "acknowledged": ids}
    after_first = snapshot(centre)
    again = node.send(*batch)
    assert again.status_code == 200
    assert again.json() == {"stored": [], "duplicates": ids, "acknowledged": ids}
    assert snapshot(centre) == after_first
    # The spool resends the last one with a new one behind it: only the new one is stored.
    newer = node.report()
    mixed = node.send(batch[-1], newer).json()
    assert mixed == {
        "stored": [newer["report_id"]],
        "duplicates": [ids[-1]],
        "acknowledged": [newer["report_id"], ids[-1]],
    }
    # The same new report twice in one batch is stored once.
    twice = node.report()
    assert node.send(twice, twice).json()["stored"] == [twice["report_id"]]
    assert [row[2] for row in _chain(centre, node.agent_id)] == [*ids, newer["report_id"], twice["report_id"]]


def test_a_resend_is_found_by_its_sequence_among_gaps_or_by_its_id(
    client: TestClient, centre: Centre, node: Node, monkeypatch: Any
) -> None:
    """Ingest looks for a report sent again among the node's last entries by its sequence number (no index over
    node and sequence since migration 0016), with gaps in the sequence; further back, by its id."""
    sent = [node.report(seq=seq) for seq in (3, 10, 11, 40)]
    assert node.send(*sent).json()["stored"] == [e["report_id"] for e in sent]
    after = snapshot(centre)
    for envelope in sent:
        answer = node.send(envelope).json()
        assert answer == {"stored": [], "duplicates": [envelope["report_id"]], "acknowledged": [envelope["report_id"]]}
    # a sequence in a gap, never stored, with a new id: a replay
    _refused(node.send(node.report(seq=12)), 409, "replay", "sequence 12 is not after the last stored 40")
    # further back than the centre looks by sequence: found by its id
    monkeypatch.setattr(receive, "LOOKBACK", 30)
    assert node.send(sent[0]).json()["duplicates"] == [sent[0]["report_id"]]
    _refused(node.send(node.report(seq=4)), 409, "replay", "sequence 4 is not after the last stored 40")
    assert snapshot(centre) == after


def test_report_ids_alike_in_their_first_characters_are_refused_past_a_bound(
    client: TestClient, centre: Centre, node: Node, monkeypatch: Any
) -> None:
    """Looking a report id up reads the node's reports whose ids begin alike: at most SAME_KEY of them."""
    monkeypatch.setattr(receive, "SAME_KEY", 3)
    monkeypatch.setattr(receive, "_BY_ID", receive._BY_ID.limit(3))
    alike = [changed(node, report_id=f"sameid0{n:05d}", seq=node.seq + n) for n in range(1, 5)]
    assert node.send(*alike[:3]).json()["stored"] == [e["report_id"] for e in alike[:3]]
    before = snapshot(centre)
    _refused(node.send(alike[3]), 400, "malformed", "the node has 3 reports whose ids begin 'sameid0' already")
    assert snapshot(centre) == before
    assert node.send(alike[0]).json()["duplicates"] == [alike[0]["report_id"]]  # found among them


def test_each_node_has_its_own_chain_in_sequence_order(client: TestClient, centre: Centre, node: Node) -> None:
    other = Node(client, hostname="db1")
    other.enrol(new_token(centre))
    sent: Dict[str, List[Dict[str, Any]]] = {node.agent_id: [], other.agent_id: []}
    for round_ in range(3):
        for n in (node, other):
            # Gaps in the sequence are allowed (a spool entry may be dropped on the node); order is not.
            n.seq += round_
            batch = [n.report(), n.report()]
            assert n.send(*batch).status_code == 200
            sent[n.agent_id] += batch
    with centre.engine.connect() as conn:
        heads = {r.id: (r.ledger_length, r.ledger_head, r.last_report_seq) for r in conn.execute(select(agents))}
    for agent_id, envelopes in sent.items():
        chain = _chain(centre, agent_id)
        assert [c[0] for c in chain] == [1, 2, 3, 4, 5, 6]
        assert [c[2] for c in chain] == [e["report_id"] for e in envelopes]
        seqs = [c[1] for c in chain]
        assert seqs == sorted(seqs) and len(set(seqs)) == 6
        prev = GENESIS
        for (index, _seq, _rid, this_hash), env in zip(chain, envelopes):  # over the previous entry's hash
            digest = body_hash(base64.b64decode(env["body"]))
            assert this_hash == entry_hash(prev, agent_id, index, digest, env["signature"])
            prev = this_hash
        assert heads[agent_id] == (6, prev, seqs[-1])


def signed_beat(node: Node, fields: Dict[str, Any]) -> Any:
    data = {
        "type": "heartbeat",
        "v": 1,
        "agent_id": node.agent_id,
        "seq": node.hb_seq + 1,
        "sent_at": datetime.now(timezone.utc).isoformat(),
        "health": {"spool_depth": 0, "last_errors": []},
        **fields,
    }
    body = canonical(data)
    headers = {"X-Tillsyn-Agent": node.agent_id, "X-Tillsyn-Signature": sign(node.key, body)}
    return node.client.post("/api/v1/heartbeat", content=body, headers=headers)


def test_heartbeat_replays_and_stale_beats_change_nothing(client: TestClient, centre: Centre, node: Node) -> None:
    ok = node.heartbeat(seq=5)
    assert ok.status_code == 200 and ok.json() == {"ok": True, "seq": 5}
    before = snapshot(centre)
    now = datetime.now(timezone.utc)
    body = canonical(
        {
            "type": "heartbeat",
            "v": 1,
            "agent_id": node.agent_id,
            "seq": "6",
            "sent_at": now.isoformat(),
            "health": {"spool_depth": 0, "last_errors": []},
        }
    )
    other = Node(client, hostname="other")
    other.enrol(new_token(centre))
    before = snapshot(centre)
    foreign = canonical(
        {
            "type": "heartbeat",
            "v": 1,
            "agent_id": other.agent_id,
            "seq": 9,
            "sent_at": now.isoformat(),
            "health": {"spool_depth": 0, "last_errors": []},
        }
    )
    cases = [
        (lambda: node.heartbeat(seq=5), 409, "replay", "heartbeat sequence 5 is not after 5"),
        (lambda: node.heartbeat(seq=4), 409, "replay", "sequence 4 is not after 5"),
        (
            lambda: node.heartbeat(seq=6, sent_at=now - timedelta(minutes=11)),
            409,
            "replay",
            "heartbeat is too old to be current",
        ),
        (lambda: node.heartbeat(seq=6, sent_at=now + timedelta(minutes=10)), 400, "clock", "in the future"),
        (
            lambda: signed_beat(node, {"seq": 6, "sent_at": "9999-12-31T23:59:59-05:00"}),
            400,
            "malformed",
            "heartbeat.sent_at: not an RFC 3339 time with zone",
        ),
        (
            lambda: client.post(
                "/api/v1/heartbeat",
                content=body,
                headers={"X-Tillsyn-Agent": node.agent_id, "X-Tillsyn-Signature": sign(node.key, body)},
            ),
            400,
            "malformed",
            "heartbeat.seq: expected int, got str",
        ),
        (
            lambda: client.post(
                "/api/v1/heartbeat",
                content=foreign,
                headers={"X-Tillsyn-Agent": node.agent_id, "X-Tillsyn-Signature": sign(node.key, foreign)},
            ),
            400,
            "malformed",
            f"heartbeat of agent {other.agent_id}, sent by {node.agent_id}",
        ),
        (
            lambda: client.post(
                "/api/v1/heartbeat",
                content=foreign,
                headers={"X-Tillsyn-Agent": node.agent_id, "X-Tillsyn-Signature": sign(other.key, foreign)},
            ),
            401,
            "bad_signature",
            "request signature",
        ),
        (lambda: client.post("/api/v1/heartbeat", content=foreign), 401, "unsigned", "missing X-Tillsyn-Agent"),
        (
            lambda: client.post(
                "/api/v1/heartbeat",
                content=foreign,
                headers={"X-Tillsyn-Agent": uuid.uuid4().hex, "X-Tillsyn-Signature": "x"},
            ),
            401,
            "unknown_agent",
            "unknown agent",
        ),
    ]
    for send, status, error, words in cases:
        _refused(send(), status, error, words)
        assert snapshot(centre) == before, words
    later = node.heartbeat(seq=6)
    assert later.status_code == 200 and later.json()["seq"] == 6
