"""Enrolment tokens and node enrolment, with clone detection.

A token is a random secret shown once and stored hashed.  A node presents it with
its hostname, machine id and public key (and proves it holds the key by signing
the request).  The same machine with the same key gets its old agent id back; a
machine id seen with another key, or a key seen from another machine id, is a
clone: enrolled as a separate node, flagged on both, and recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Dict, List, Mapping, Optional

from sqlalchemy import Connection, RowMapping, and_, func, or_, select, text, update

from central import audit
from central.db.schema import agents, enrolment_conflicts, enrolment_tokens
from central.identifiers import new_id, new_secret, secret_hash
from central.ingest.ledger import GENESIS
from central.request_refused import refuse
from evidence.signing import SignatureError, b64, fingerprint, load_public_key, unb64

TOKEN_PREFIX = "tse"  # noqa: S105  a prefix that marks the secret, not a secret
# Matched with fullmatch: ``$`` would also accept a trailing newline ("web1\n").
_MACHINE_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
_HOSTNAME = re.compile(r"[^\x00-\x1f\x7f-\x9f]{1,255}")  # no C0, DEL or C1 control characters
_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_VERSION = re.compile(r"[^\x00-\x1f\x7f-\x9f]{1,64}")


@dataclass(frozen=True)
class NewToken:
    id: str
    secret: str
    expires_at: datetime


def check_name(kind: str, value: Optional[str]) -> Optional[str]:
    if value is not None and not _NAME.fullmatch(value):
        raise ValueError(f"{kind} {value!r}: use 1-128 of A-Z a-z 0-9 _ . : -")
    return value


def create_token(
    conn: Connection,
    now: datetime,
    *,
    ttl: timedelta,
    max_uses: Optional[int] = None,
    tenant: Optional[str] = None,
    group: Optional[str] = None,
    labels: Optional[Mapping[str, str]] = None,
    note: Optional[str] = None,
) -> NewToken:
    check_name("tenant", tenant)
    check_name("group", group)
    for key, value in (labels or {}).items():
        check_name("label key", key)
        check_name("label value", value)
    if max_uses is not None and max_uses < 1:
        raise ValueError("max uses must be at least 1")
    token = NewToken(new_id(), new_secret(TOKEN_PREFIX), now + ttl)
    conn.execute(
        enrolment_tokens.insert().values(
            id=token.id,
            token_hash=secret_hash(token.secret),
            created_at=now,
            expires_at=token.expires_at,
            max_uses=max_uses,
            uses=0,
            tenant=tenant,
            group_name=group,
            labels=dict(labels or {}),
            note=note,
        )
    )
    return token


def list_tokens(conn: Connection) -> List[Dict[str, Any]]:
    rows = conn.execute(select(enrolment_tokens).order_by(enrolment_tokens.c.created_at)).mappings()
    return [{k: v for k, v in row.items() if k != "token_hash"} for row in rows]


def revoke_token(conn: Connection, token_id: str, now: datetime) -> bool:
    result = conn.execute(
        update(enrolment_tokens)
        .where(enrolment_tokens.c.id == token_id, enrolment_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return bool(result.rowcount)


@dataclass(frozen=True)
class EnrolRequest:
    token: str
    hostname: str
    machine_id: str
    public_key: str
    agent_version: str


def parse_request(data: Any) -> EnrolRequest:
    if not isinstance(data, dict):
        raise refuse(400, "malformed", "enrolment request must be a JSON object")
    values = {}
    for name in ("token", "hostname", "machine_id", "public_key", "agent_version"):
        value = data.get(name)
        if not isinstance(value, str) or not value:
            raise refuse(400, "malformed", f"enrolment request: field {name!r} must be a non-empty string")
        values[name] = value
    if not _HOSTNAME.fullmatch(values["hostname"]):
        raise refuse(400, "malformed", "hostname must be 1-255 characters without control characters")
    if not _MACHINE_ID.fullmatch(values["machine_id"]):
        raise refuse(400, "malformed", "machine_id must be 1-64 characters of A-Z a-z 0-9 -")
    if not _VERSION.fullmatch(values["agent_version"]):
        raise refuse(400, "malformed", "agent_version must be 1-64 characters without control characters")
    try:
        load_public_key(values["public_key"])
    except (SignatureError, ValueError) as err:
        raise refuse(400, "malformed", f"public_key: {err}") from err
    # One text per key: base64 ignores the unused low bits of the last character, so the
    # same 32 bytes have several spellings; clone detection compares the canonical one.
    values["public_key"] = b64(unb64(values["public_key"], "public key"))
    return EnrolRequest(**values)


_ASK_ADMIN = "ask an administrator for a new token (tillsyn-central token create)"


def _token_row(conn: Connection, secret: str, now: datetime) -> RowMapping:
    """A known, unrevoked, unexpired token; its use count is checked where a use is spent."""
    row = (
        conn.execute(select(enrolment_tokens).where(enrolment_tokens.c.token_hash == secret_hash(secret)))
        .mappings()
        .first()
    )
    hint = _ASK_ADMIN
    if row is None:
        raise refuse(403, "token_refused", "enrolment token refused: unknown token", hint)
    if row["revoked_at"] is not None:
        raise refuse(403, "token_refused", "enrolment token refused: revoked", hint)
    if row["expires_at"] <= now:
        raise refuse(
            403, "token_refused", f"enrolment token refused: expired at {row['expires_at']:%Y-%m-%d %H:%M} UTC", hint
        )
    return row


def _one_at_a_time(conn: Connection, req: EnrolRequest) -> None:
    """Enrolments of one machine id or one key wait for each other, so two clones enrolling at the
    same instant still see each other (on SQLite the write lock already orders every enrolment).
    Locks are taken in a fixed order so two enrolments never wait for each other in a circle."""
    if conn.dialect.name != "postgresql":
        return
    for value in sorted({f"machine:{req.machine_id}", f"key:{req.public_key}"}):
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:v, 7117))"), {"v": value})


def enrol(conn: Connection, req: EnrolRequest, now: datetime, default_tenant: Optional[str] = None) -> Dict[str, Any]:
    """Enrol (or re-enrol) a node; returns the agent id and whether it was new or a clone.  A token
    that names no tenant puts the node in ``default_tenant`` (central.yaml), so every page, filter
    and export treats it like any other node."""
    token = _token_row(conn, req.token, now)
    _one_at_a_time(conn, req)
    # The same machine with the same key (an agent retrying after a lost answer) gets its
    # id back without spending a use, even when the token has none left.
    same = conn.execute(
        select(agents.c.id).where(
            agents.c.machine_id == req.machine_id,
            agents.c.public_key == req.public_key,
            agents.c.revoked_at.is_(None),
        )
    ).first()
    if same is not None:
        return {"agent_id": same.id, "status": "existing"}
    # Consume one use atomically: two nodes racing for the last use cannot both win.
    used = conn.execute(
        update(enrolment_tokens)
        .where(
            enrolment_tokens.c.id == token["id"],
            or_(enrolment_tokens.c.max_uses.is_(None), enrolment_tokens.c.uses < enrolment_tokens.c.max_uses),
        )
        .values(uses=enrolment_tokens.c.uses + 1)
    )
    if not used.rowcount:
        raise refuse(
            403, "token_refused", "enrolment token refused: already used its allowed number of times", _ASK_ADMIN
        )
    agent_id = new_id()
    conn.execute(
        agents.insert().values(
            id=agent_id,
            hostname=req.hostname,
            machine_id=req.machine_id,
            public_key=req.public_key,
            key_fingerprint=fingerprint(req.public_key),
            tenant=token["tenant"] or default_tenant,
            group_name=token["group_name"],
            labels=token["labels"] or {},
            agent_version=req.agent_version,
            token_id=token["id"],
            enrolled_at=now,
            last_report_seq=0,
            last_heartbeat_seq=0,
            silent=False,
            ledger_length=0,
            ledger_head=GENESIS,
        )
    )
    clones = _detect_clones(conn, req, agent_id, now)
    return {"agent_id": agent_id, "status": "clone_suspected" if clones else "new", "conflicts": clones}


def _detect_clones(conn: Connection, req: EnrolRequest, agent_id: str, now: datetime) -> List[str]:
    others = conn.execute(
        select(agents.c.id, agents.c.machine_id, agents.c.public_key).where(
            agents.c.id != agent_id,
            agents.c.revoked_at.is_(None),
            or_(agents.c.machine_id == req.machine_id, agents.c.public_key == req.public_key),
        )
    ).all()
    found = []
    for other in others:
        if other.machine_id == req.machine_id:
            kind, detail = (
                "machine_id_reused",
                (
                    f"machine id {req.machine_id} is already enrolled as {other.id} with another key: "
                    "a cloned disk image, or a node re-enrolled after losing its key (revoke the old one)"
                ),
            )
        else:
            kind, detail = (
                "key_reused",
                (
                    f"the key of {other.id} is presented again from machine id {req.machine_id}: "
                    "the agent's state directory was copied to another machine"
                ),
            )
        conn.execute(
            enrolment_conflicts.insert().values(
                detected_at=now,
                kind=kind,
                machine_id=req.machine_id,
                hostname=req.hostname,
                key_fingerprint=fingerprint(req.public_key),
                existing_agent_id=other.id,
                new_agent_id=agent_id,
                detail=detail,
            )
        )
        conn.execute(update(agents).where(agents.c.id.in_([other.id, agent_id])).values(conflict=detail))
        found.append(detail)
    return found


def conflicts(conn: Connection, visible: Optional[Callable[[Any], Any]] = None) -> List[Dict[str, Any]]:
    """Every suspected clone, oldest first; with ``visible`` (a tenant condition on a tenant column,
    e.g. ``Principal.tenant_filter``) only those whose two nodes both pass it."""
    query = select(enrolment_conflicts).order_by(enrolment_conflicts.c.id)
    if visible is not None:
        for column in (enrolment_conflicts.c.existing_agent_id, enrolment_conflicts.c.new_agent_id):
            node = agents.alias()
            condition = visible(node.c.tenant)
            if condition is not None:
                query = query.join(node, node.c.id == column).where(condition)
    return [dict(r) for r in conn.execute(query).mappings()]


def revoke_agent(conn: Connection, agent_id: str, now: datetime) -> bool:
    result = conn.execute(
        update(agents).where(and_(agents.c.id == agent_id, agents.c.revoked_at.is_(None))).values(revoked_at=now)
    )
    return bool(result.rowcount)


def assign_default_tenant(conn: Connection, tenant: str, now: datetime) -> int:
    """Nodes enrolled without a tenant (before ``default_tenant`` existed) join it; recorded once."""
    moved = conn.execute(update(agents).where(agents.c.tenant.is_(None)).values(tenant=tenant)).rowcount
    if moved:
        audit.record(conn, now, "system", "agents.default_tenant", tenant, {"nodes": moved})
    return int(moved or 0)


def count_agents(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(agents)).scalar_one())


def get_agent(conn: Connection, agent_id: str) -> RowMapping:
    row = conn.execute(select(agents).where(agents.c.id == agent_id)).mappings().first()
    if row is None:
        raise KeyError(agent_id)
    return row
