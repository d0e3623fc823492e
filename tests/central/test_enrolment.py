"""Enrolment over HTTP on both databases: tokens, idempotent re-enrolment, clones, refusals."""

from __future__ import annotations

import base64
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import select

from central.db.engine import write_tx
from central.db.schema import agents, enrolment_tokens
from central.enrolment import EnrolRequest, create_token, enrol, parse_request, revoke_agent, revoke_token
from central.runtime.service import Centre
from evidence.signing import new_private_key, sign
from tests.central.conftest import Node, api_key, new_token, snapshot

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _token_row(centre: Centre) -> Dict[str, Any]:
    with centre.engine.connect() as conn:
        return dict(conn.execute(select(enrolment_tokens)).mappings().one())


def _agent(centre: Centre, agent_id: str) -> Dict[str, Any]:
    with centre.engine.connect() as conn:
        return dict(conn.execute(select(agents).where(agents.c.id == agent_id)).mappings().one())


def _post_enrol(
    client: TestClient, data: Any, key: Optional[Ed25519PrivateKey], signature: Optional[str] = None
) -> Any:
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    headers = {}
    if signature is not None:
        headers["X-Tillsyn-Signature"] = signature
    elif key is not None:
        headers["X-Tillsyn-Signature"] = sign(key, body)
    return client.post("/api/v1/enrol", content=body, headers=headers)


def test_token_is_hashed_at_rest_and_gives_the_node_its_tenant_group_and_labels(
    client: TestClient, centre: Centre, tmp_path: Path
) -> None:
    secret = new_token(centre, tenant="acme", group="web", labels={"env": "prod", "dc": "sto1"}, note="batch 7")
    node = Node(client)
    data = node.enrol(secret)
    assert data["status"] == "new" and data["conflicts"] == []
    assert data["heartbeat_interval_s"] == 60
    row = _agent(centre, node.agent_id)
    assert (row["tenant"], row["group_name"], row["labels"]) == ("acme", "web", {"env": "prod", "dc": "sto1"})
    assert (row["hostname"], row["machine_id"], row["public_key"]) == (node.hostname, node.machine_id, node.public_key)
    token = _token_row(centre)
    assert token["uses"] == 1 and row["token_id"] == token["id"]
    # The secret is nowhere in the database: not in any row, not in the SQLite files.
    everything = repr(snapshot(centre))
    assert secret not in everything and secret.split("_", 1)[1] not in everything
    for path in tmp_path.glob("central.db*"):
        assert secret.encode() not in path.read_bytes()


def test_reenrolling_the_same_machine_and_key_is_idempotent(client: TestClient, centre: Centre) -> None:
    secret = new_token(centre, max_uses=1)
    node = Node(client)
    first = node.enrol(secret)["agent_id"]
    before = snapshot(centre)
    # The single use is spent, yet the same machine with the same key gets its id back
    # (an agent whose first answer was lost retries), without spending another use.
    again = node.enrol(secret)
    assert (again["agent_id"], again["status"]) == (first, "existing")
    assert snapshot(centre) == before
    assert _token_row(centre)["uses"] == 1
    # A revoked node that enrols again is a new node, not a clone of its revoked self.
    with write_tx(centre.engine) as conn:
        assert revoke_agent(conn, first, datetime.now(timezone.utc))
    fresh = node.enrol(new_token(centre))
    assert fresh["status"] == "new" and fresh["agent_id"] != first and fresh["conflicts"] == []


def test_token_refusals_name_the_reason_and_change_nothing(client: TestClient, centre: Centre) -> None:
    now = datetime.now(timezone.utc)
    with write_tx(centre.engine) as conn:
        expired = create_token(conn, now - timedelta(hours=2), ttl=timedelta(hours=1)).secret
        revoked = create_token(conn, now, ttl=timedelta(hours=1))
        assert revoke_token(conn, revoked.id, now)
        assert not revoke_token(conn, revoked.id, now)
        single = create_token(conn, now, ttl=timedelta(hours=1), max_uses=1).secret
    Node(client).enrol(single)
    before = snapshot(centre)
    cases = [
        ("tse_" + "x" * 43, "unknown token"),
        (expired, "expired at"),
        (revoked.secret, "revoked"),
        (single, "already used its allowed number of times"),
    ]
    for secret, why in cases:
        data = Node(client).enrol(secret, expect=403)
        assert data["error"] == "token_refused", data
        assert data["message"].startswith("enrolment token refused: ") and why in data["message"], data
        assert "tillsyn-central token create" in data["hint"]
        assert snapshot(centre) == before, why


def test_two_nodes_racing_for_the_last_uses_only_that_many_win(client: TestClient, centre: Centre) -> None:
    secret = new_token(centre, max_uses=2)
    contenders = [Node(client, machine_id=uuid.uuid4().hex) for _ in range(8)]
    bodies = []
    for n in contenders:
        body = json.dumps(
            {
                "token": secret,
                "hostname": "racer",
                "machine_id": n.machine_id,
                "public_key": n.public_key,
                "agent_version": "t",
            }
        ).encode()
        bodies.append((body, sign(n.key, body)))

    def attempt(item: Any) -> int:
        body, signature = item
        response = client.post("/api/v1/enrol", content=body, headers={"X-Tillsyn-Signature": signature})
        return response.status_code

    with ThreadPoolExecutor(len(bodies)) as pool:
        codes = sorted(pool.map(attempt, bodies))
    assert codes == [200, 200] + [403] * 6
    assert _token_row(centre)["uses"] == 2
    assert len(snapshot(centre)["agents"]) == 2


def test_clones_are_enrolled_apart_and_flagged_on_both(client: TestClient, centre: Centre) -> None:
    secret = new_token(centre)
    original = Node(client, hostname="web1")
    original.enrol(secret)
    # A cloned disk image: same machine id, a key of its own.
    image = Node(client, machine_id=original.machine_id, hostname="web1-copy")
    cloned = image.enrol(secret)
    assert cloned["status"] == "clone_suspected" and cloned["agent_id"] != original.agent_id
    assert original.machine_id in cloned["conflicts"][0] and original.agent_id in cloned["conflicts"][0]
    # A copied state directory: the original's key from another machine id, here written
    # in a non-canonical base64 form of the same 32 bytes (the unused low bits of the last
    # character set), which must not hide it.
    raw = base64.b64decode(original.public_key)
    text = base64.b64encode(raw).decode()
    variant = text[:-2] + _B64[_B64.index(text[-2]) | 1] + "="
    assert variant != text and base64.b64decode(variant) == raw
    copied = Node(client, key=original.key, hostname="web2")
    body = json.dumps(
        {
            "token": secret,
            "hostname": copied.hostname,
            "machine_id": copied.machine_id,
            "public_key": variant,
            "agent_version": "t",
        }
    ).encode()
    response = client.post("/api/v1/enrol", content=body, headers={"X-Tillsyn-Signature": sign(original.key, body)})
    assert response.status_code == 200, response.text
    copy = response.json()
    assert copy["status"] == "clone_suspected", copy
    assert _agent(centre, copy["agent_id"])["public_key"] == text  # stored in the one canonical form

    for agent_id in (original.agent_id, image.agent_id, copy["agent_id"]):
        assert _agent(centre, agent_id)["conflict"], agent_id
    nodes = {n["id"]: n for n in client.get("/api/v1/nodes", headers=api_key(centre)).json()}
    assert all(nodes[a]["conflict"] for a in (original.agent_id, image.agent_id, copy["agent_id"]))
    listed = client.get("/api/v1/conflicts", headers=api_key(centre)).json()
    assert [(c["kind"], c["existing_agent_id"], c["new_agent_id"]) for c in listed] == [
        ("machine_id_reused", original.agent_id, image.agent_id),
        ("key_reused", original.agent_id, copy["agent_id"]),
    ]
    assert listed[1]["machine_id"] == copied.machine_id and listed[1]["hostname"] == "web2"
    assert client.get("/api/v1/conflicts").status_code == 401


def _request(node: Node, secret: str, **changes: Any) -> Dict[str, Any]:
    data = {
        "token": secret,
        "hostname": node.hostname,
        "machine_id": node.machine_id,
        "public_key": node.public_key,
        "agent_version": "t",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_enrolment_must_be_signed_with_the_presented_key(client: TestClient, centre: Centre) -> None:
    secret = new_token(centre)
    before = snapshot(centre)
    node = Node(client)
    data = _request(node, secret)
    body = json.dumps(data).encode()
    cases = [
        (None, "signature must be 'ed25519 <base64>'"),
        (sign(new_private_key(), body), "does not match"),
        (sign(node.key, body + b" "), "does not match"),
        ("ed25519 !!!", "not valid base64"),
        ("rsa " + sign(node.key, body).split()[1], "signature must be 'ed25519 <base64>'"),
    ]
    for signature, why in cases:
        response = client.post(
            "/api/v1/enrol", content=body, headers={} if signature is None else {"X-Tillsyn-Signature": signature}
        )
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "bad_signature"
        message = response.json()["message"]
        assert message.startswith("enrolment must be signed with the presented key") and why in message, message
        assert snapshot(centre) == before


def test_malformed_enrolment_fields_are_named(client: TestClient, centre: Centre) -> None:
    secret = new_token(centre)
    before = snapshot(centre)
    node = Node(client)
    short_key = base64.b64encode(b"\x01" * 31).decode()
    cases: List[Any] = [
        (_request(node, secret, hostname="web1\x1b[2J"), "hostname"),
        (_request(node, secret, hostname="web1\n"), "hostname"),
        (_request(node, secret, hostname="web1\x85"), "hostname"),
        (_request(node, secret, hostname="h" * 256), "hostname"),
        (_request(node, secret, machine_id="../../etc/machine-id"), "machine_id"),
        (_request(node, secret, machine_id="abc\n"), "machine_id"),
        (_request(node, secret, machine_id="a" * 65), "machine_id"),
        (_request(node, secret, public_key="not a key"), "public_key"),
        (_request(node, secret, public_key=short_key), "public_key"),
        (_request(node, secret, public_key=None), "'public_key'"),
        (_request(node, secret, token=7), "'token'"),
        (_request(node, secret, agent_version=""), "'agent_version'"),
        (_request(node, secret, agent_version="1.0\x00"), "agent_version"),
        (_request(node, secret, agent_version="1" * 65), "agent_version"),
        ([1, 2], "JSON object"),
        (b"{not json", "not valid JSON"),
    ]
    for data, field in cases:
        response = _post_enrol(client, data, node.key)
        assert response.status_code == 400, (data, response.text)
        assert response.json()["error"] == "malformed"
        assert field in response.json()["message"], (data, response.json())
        assert snapshot(centre) == before


def test_clones_enrolling_at_the_same_instant_with_their_own_tokens_are_still_flagged(centre: Centre) -> None:
    """Two copies of one disk image (or one state directory) enrolling at once, each with a token of
    its own, so no shared token row orders them: each pair is still seen as clones, and the same
    machine with the same key twice at once still becomes one node."""
    import threading

    def request(node: Node, machine_id: str) -> EnrolRequest:
        return parse_request(
            {
                "token": new_token(centre),
                "hostname": "racer",
                "machine_id": machine_id,
                "public_key": node.public_key,
                "agent_version": "t",
            }
        )

    def race(first: EnrolRequest, second: EnrolRequest) -> List[Dict[str, Any]]:
        gate = threading.Barrier(2)
        answers: List[Dict[str, Any]] = []

        def one(req: EnrolRequest) -> None:
            gate.wait()
            with write_tx(centre.engine) as conn:
                answers.append(enrol(conn, req, datetime.now(timezone.utc)))

        threads = [threading.Thread(target=one, args=(r,)) for r in (first, second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        return answers

    for _ in range(8):
        machine = uuid.uuid4().hex
        answers = race(request(Node(None), machine), request(Node(None), machine))  # type: ignore[arg-type]
        assert sorted(a["status"] for a in answers) == ["clone_suspected", "new"], answers
        same = Node(None)  # type: ignore[arg-type]
        machine = uuid.uuid4().hex
        answers = race(request(same, machine), request(same, machine))
        assert sorted(a["status"] for a in answers) == ["existing", "new"], answers
        assert answers[0]["agent_id"] == answers[1]["agent_id"]


def test_an_admin_of_some_tenants_sees_only_conflicts_between_their_own_nodes(
    client: TestClient, centre: Centre
) -> None:
    """A clone in another tenant names that tenant's host and machine: it is not theirs to see (M10)."""
    from tests.central.people import log_in, make_user

    def pair(tenant: str, clone_tenant: str, hostname: str) -> Tuple[str, str]:
        first = Node(client, hostname=hostname)
        first.enrol(new_token(centre, tenant=tenant))
        copy = Node(client, machine_id=first.machine_id, hostname=hostname + "-copy")
        assert copy.enrol(new_token(centre, tenant=clone_tenant))["status"] == "clone_suspected"
        return first.agent_id, copy.agent_id

    in_acme = pair("acme", "acme", "web.acme")
    in_globex = pair("globex", "globex", "db.globex")
    across = pair("acme", "globex", "mail.acme")
    make_user(centre, "ada", "admin", "acme")
    make_user(centre, "gus", "admin", "globex", "acme")
    make_user(centre, "root", "admin", "*")

    def seen(name: str) -> List[Tuple[str, str]]:
        browser, _ = log_in(client, name)
        answer = browser.get("/api/v1/conflicts")
        assert answer.status_code == 200, answer.text
        return [(c["existing_agent_id"], c["new_agent_id"]) for c in answer.json()]

    assert seen("ada") == [in_acme]
    assert seen("gus") == [in_acme, in_globex, across]
    assert seen("root") == [in_acme, in_globex, across]
    make_user(centre, "otto", "operator", "*")
    browser, _ = log_in(client, "otto")
    assert browser.get("/api/v1/conflicts").status_code == 403
