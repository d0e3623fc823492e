"""The centre's tables (SQLAlchemy Core).  Changes go through an Alembic migration.

Times are stored as timezone-aware UTC.  JSON columns hold what agents sent or
what the rule engine derived; signed report bodies come back byte for byte (central/db/report_bodies.py).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    literal_column,
    text,
)
from sqlalchemy.sql.elements import ColumnElement

from central.db.types import HexDigest, LedgerTime, Signature, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


REPORT_KEY = 7
"""How many leading characters of a report id ``ix_reports_report_key`` holds: 28 bits of an agent's random
hex ids, and on PostgreSQL an index entry of 16 bytes (8 characters would take 24 with alignment)."""


def _ts(name: str, nullable: bool = True) -> Column[object]:
    return Column(name, UTCDateTime(), nullable=nullable)


enrolment_tokens = Table(
    "enrolment_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    _ts("created_at", False),
    _ts("expires_at", False),
    Column("max_uses", Integer, nullable=True),
    Column("uses", Integer, nullable=False, default=0),
    Column("tenant", String(128), nullable=True),
    Column("group_name", String(128), nullable=True),
    Column("labels", JSON, nullable=False, default=dict),
    Column("note", Text, nullable=True),
    _ts("revoked_at"),
)

agents = Table(
    "agents",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("hostname", String(255), nullable=False),
    Column("machine_id", String(64), nullable=False, index=True),
    Column("public_key", String(64), nullable=False, index=True),
    Column("key_fingerprint", String(64), nullable=False),
    Column("tenant", String(128), nullable=True),
    Column("group_name", String(128), nullable=True),
    Column("labels", JSON, nullable=False, default=dict),
    Column("agent_version", String(64), nullable=True),
    Column("token_id", String(32), nullable=True),
    _ts("enrolled_at", False),
    _ts("revoked_at"),
    Column("conflict", Text, nullable=True),
    Column("last_report_seq", BigInteger, nullable=False, default=0),
    _ts("last_report_at"),
    Column("last_heartbeat_seq", BigInteger, nullable=False, default=0),
    _ts("last_heartbeat_at"),
    Column("health", JSON, nullable=True),
    Column("silent", Boolean, nullable=False, default=False),
    _ts("silent_since"),
    Column("ledger_length", BigInteger, nullable=False, default=0),
    Column("ledger_head", String(64), nullable=False),
)

enrolment_conflicts = Table(
    "enrolment_conflicts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _ts("detected_at", False),
    Column("kind", String(32), nullable=False),
    Column("machine_id", String(64), nullable=False),
    Column("hostname", String(255), nullable=False),
    Column("key_fingerprint", String(64), nullable=False),
    Column("existing_agent_id", String(32), ForeignKey("agents.id"), nullable=False),
    Column("new_agent_id", String(32), ForeignKey("agents.id"), nullable=False),
    Column("detail", Text, nullable=False),
)

reports = Table(
    "reports",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("agent_id", String(32), ForeignKey("agents.id"), nullable=False),
    Column("report_id", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    # the ledger's own columns are stored compactly since migration 0016 (central/db/types.py):
    # times as microseconds on SQLite, hashes and the signature as bytes; code sees times and text
    Column("collected_at", LedgerTime(), nullable=False),
    Column("received_at", LedgerTime(), nullable=False),
    # the signed bytes, or since migration 0011 a skeleton of them (central/db/report_bodies.py):
    # read it only through report_bodies.Bodies
    Column("body", LargeBinary, nullable=False),
    Column("signature", Signature(), nullable=False),
    Column("body_sha256", HexDigest(), nullable=False),
    Column("chain_index", BigInteger, nullable=False),
    # the entry's hash over the previous entry's hash (not stored since migration 0018: that of entry
    # chain_index - 1, of the retention checkpoint, or genesis; central/ingest/ledger.py), node, index,
    # body hash and signature
    Column("entry_hash", HexDigest(), nullable=False),
    # erasure on request (M08, central/erasure/): the body was scrubbed; body_sha256 stays the
    # original's (the chain commits to it), erased_sha256 is the scrubbed body's
    Column("erased_sha256", HexDigest(), nullable=True),
    Column("erasure_id", String(32), nullable=True),
    UniqueConstraint("agent_id", "chain_index", name="uq_reports_agent_chain"),
    # since 0016 no index over (agent_id, seq) nor (agent_id, report_id): ingest, which holds the node's row,
    # stores only sequence numbers after the last and report ids not used before, and finds a report sent
    # again by its sequence within the chain's last entries (central/ingest/receive.py)
)


def report_key(report_id: ColumnElement[str]) -> ColumnElement[str]:
    """The expression ``ix_reports_report_key`` is made of, with its bounds as literals (SQLite uses the
    index only for a query with the very same expression, not with bound parameters in it)."""
    return func.substr(report_id, literal_column("1"), literal_column(str(REPORT_KEY)))


Index("ix_reports_report_key", report_key(reports.c.report_id))
"""The export finds the reports its findings cite by their ids (central/export/ledger_refs.py), since 0016
through the ids' first :data:`REPORT_KEY` characters (about 20 bytes a report) instead of a unique index of
node and id (about 75): the report id is the node's name for its report, which the ledger does not key on."""

evidence_blobs = Table(
    "evidence_blobs",
    metadata,
    Column("agent_id", String(32), ForeignKey("agents.id"), primary_key=True),
    Column("digest", LargeBinary, primary_key=True),  # SHA-256 of the piece's bytes (32 bytes)
    Column("data", LargeBinary, nullable=False),  # the piece, zlib-compressed
    _ts("last_used", False),  # moved on at most once a day (central/db/report_bodies.py)
)
"""Evidence stored once per node: the pieces report skeletons refer to (central/db/report_bodies.py)."""

pending_evaluation = Table(
    "pending_evaluation",
    metadata,
    Column(
        "report_pk",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("reports.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("agent_id", String(32), nullable=False),
    Index("ix_pending_evaluation_agent_id", "agent_id"),
)
"""Reports stored and chained but not yet evaluated (see central/judging/evaluation.py)."""

latest_evidence = Table(
    "latest_evidence",
    metadata,
    Column("agent_id", String(32), ForeignKey("agents.id"), primary_key=True),
    Column("collector", String(64), primary_key=True),
    Column("report_id", String(64), nullable=False),
    _ts("collected_at", False),
    Column("status", String(16), nullable=False),
    Column("record", JSON, nullable=False),
)

findings = Table(
    "findings",
    metadata,
    Column("agent_id", String(32), ForeignKey("agents.id"), primary_key=True),
    Column("rule_id", String(64), primary_key=True),
    Column("rule_version", Integer, nullable=False),
    Column("controls", JSON, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("observed", JSON, nullable=True),
    Column("message", Text, nullable=False),
    _ts("since", False),
    _ts("evaluated_at", False),
    _ts("evidence_at"),
    Column("report_id", String(64), nullable=True),
    Index("ix_findings_status", "status", "agent_id"),  # covers the problem counts (central/judging/node_states.py)
)

finding_changes = Table(
    "finding_changes",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("agent_id", String(32), ForeignKey("agents.id"), nullable=False),
    Column("rule_id", String(64), nullable=False),
    Column("from_status", String(16), nullable=True),
    Column("to_status", String(16), nullable=False),
    _ts("at", False),
    Column("observed", JSON, nullable=True),
    Column("report_id", String(64), nullable=True),
    # what the finding was classed under when it changed (the export's past, not today's policy);
    # NULL only in rows older than migration 0008 of rules it could not place
    Column("controls", JSON, nullable=True),
    Column("severity", String(16), nullable=True),
    Column("message", Text, nullable=True),  # the finding's sentence at that change (null before 0014)
    Index("ix_finding_changes_agent_rule", "agent_id", "rule_id"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    _ts("created_at", False),
    _ts("revoked_at"),
    Column("user_id", String(32), nullable=True),  # the person it acts as; none: an administrator's script key
)

# --- alerting (incidents, outbox, maintenance windows, waivers) and the audit trail -------------

incidents = Table(
    "incidents",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("agent_id", String(32), ForeignKey("agents.id"), nullable=False),
    Column("rule_id", String(64), nullable=False),  # a rule id, or "silent" for a node without heartbeats
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("title", Text, nullable=False),  # the rule's title
    Column("message", Text, nullable=True),  # the finding's sentence when it opened (null before 0009)
    Column("controls", JSON, nullable=False),
    Column("observed", JSON, nullable=True),
    Column("dedup_key", String(160), nullable=False),
    _ts("opened_at", False),
    _ts("resolved_at"),
    _ts("acknowledged_at"),
    Column("acknowledged_by", String(128), nullable=True),
    _ts("last_notified_at"),
    # when a duty round must look at this open incident again (a reminder or re-send can fall due);
    # null: at the next round.  A round reads only these, not every open incident (migration 0013).
    _ts("next_check_at"),
    Index("ix_incidents_status", "status"),
    Index("ix_incidents_due", "status", "next_check_at"),
    Index(
        "uq_incidents_open",
        "agent_id",
        "rule_id",
        unique=True,
        sqlite_where=text("status = 'open'"),
        postgresql_where=text("status = 'open'"),
    ),
)

incident_events = Table(
    "incident_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("incident_id", BigInteger().with_variant(Integer, "sqlite"), ForeignKey("incidents.id"), nullable=False),
    _ts("at", False),
    Column("kind", String(24), nullable=False),
    Column("channel", String(64), nullable=True),
    Column("actor", String(128), nullable=True),
    Column("detail", Text, nullable=True),
    Index("ix_incident_events_incident", "incident_id"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("incident_id", BigInteger().with_variant(Integer, "sqlite"), ForeignKey("incidents.id"), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("event", String(16), nullable=False),
    Column("message", Text, nullable=True),  # the sentence this notification carries (null before 0009)
    _ts("created_at", False),
    _ts("next_attempt_at", False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    _ts("claimed_until"),
    Column("claimed_by", String(64), nullable=True),
    _ts("sent_at"),
    Index("ix_outbox_pending", "sent_at", "next_attempt_at"),
    Index("ix_outbox_incident", "incident_id", "channel"),  # reminders and who heard an incident
)

maintenance_windows = Table(
    "maintenance_windows",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("agent_id", String(32), nullable=True),
    Column("group_name", String(128), nullable=True),
    Column("tenant", String(128), nullable=True),
    _ts("starts_at", False),
    _ts("ends_at", False),
    Column("allows", JSON, nullable=False),  # rule ids allowed to deviate (e.g. remote-service ports)
    Column("reason", Text, nullable=False),
    Column("created_by", String(128), nullable=False),
    _ts("created_at", False),
    _ts("cancelled_at"),
    Column("cancelled_by", String(128), nullable=True),
)

waivers = Table(
    "waivers",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("agent_id", String(32), nullable=True),
    Column("group_name", String(128), nullable=True),
    Column("tenant", String(128), nullable=True),
    Column("rule_id", String(64), nullable=False),
    Column("justification", Text, nullable=False),
    Column("approver", String(128), nullable=False),
    Column("created_by", String(128), nullable=False),
    _ts("created_at", False),
    _ts("expires_at", False),
    _ts("revoked_at"),
    Column("revoked_by", String(128), nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    _ts("at", False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("object", String(160), nullable=True),
    Column("detail", JSON, nullable=True),
    Column("source", String(128), nullable=True),
    Index("ix_audit_log_at", "at"),
)

# --- people: personal accounts, sessions (the dashboard), API keys per person ---------------------

users = Table(
    "users",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(128), nullable=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),  # viewer, operator, admin
    Column("tenants", JSON, nullable=False),  # granted tenants; ["*"] means every tenant
    _ts("created_at", False),
    _ts("disabled_at"),
    Column("failed_logins", Integer, nullable=False, default=0),
    _ts("locked_until"),
    _ts("last_login_at"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", String(32), ForeignKey("users.id"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    _ts("created_at", False),
    _ts("last_seen_at", False),
    _ts("expires_at", False),
    Column("source", String(128), nullable=True),
    Index("ix_sessions_user", "user_id"),
)

# --- erasure on request (M08) and the duties' last runs -------------------------------------------

erasures = Table(
    "erasures",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("agent_id", String(32), ForeignKey("agents.id"), nullable=False),
    Column("reference", String(128), nullable=False, unique=True),  # the request's own reference
    _ts("requested_at", False),
    _ts("due_at", False),  # three months after the request (GDPR Art. 17 as the policy words it)
    Column("recorded_by", String(128), nullable=False),
    _ts("recorded_at", False),
    _ts("erased_at"),  # None: still to be carried out
    Column("erased_by", String(128), nullable=True),
    Column("reports", Integer, nullable=True),
    Column("erased_values", Integer, nullable=True),
)

duty_runs = Table(
    "duty_runs",
    metadata,
    Column("name", String(32), primary_key=True),
    _ts("last_run_at", False),
    Column("detail", JSON, nullable=True),
)
"""When a background duty (retention) last ran: M08 says whether it runs within its interval."""
