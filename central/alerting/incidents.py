"""Incidents: opened from failing or stale findings and silent nodes, resolved when they clear.

Run as a background duty (under the duties' lock on PostgreSQL, so one centre
process per round).  Every state change writes its timeline event and its
notifications (outbox rows) in the same transaction, so a crash can lose neither.
Flapping is damped by ``open_after_s`` and ``resolve_after_s``; a silent node
raises one ``silent`` incident, not a stale one per control.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Dict, Iterable, List, Mapping, Optional, Set, Tuple

from sqlalchemy import Connection, RowMapping, and_, bindparam, exists, func, or_, select, update

from central.alerting.routing import route
from central.alerting.settings import Alerting
from central.alerting.suppress import InForce, ended_at, in_force, window_span
from central.db.id_lists import in_lists
from central.db.schema import agents, findings, incident_events, incidents, outbox
from evidence.policy import Policy
from evidence.rules import Rule
from evidence.telling import resolved as resolved_sentence

SILENT = "silent"
OPENING = ("failing", "stale")
MESSAGE_MAX = 2000


@dataclass
class Round:
    opened: int = 0
    resolved: int = 0
    notified: int = 0
    held: int = 0
    suppressed: int = 0
    """Deviations that opened no incident because a rule they depend on fails on the same node."""
    updated: int = 0
    """Open incidents whose finding turned unknown (or failing again), told to whoever heard the trigger."""


@dataclass(frozen=True)
class Opening:
    """An incident about to open: for which node and rule, what it says, and what was observed."""

    agent: Mapping[Any, Any]
    rule_id: str
    kind: str
    severity: str
    title: str
    controls: List[str]
    observed: Any
    message: str
    """The timeline's "detected" line."""


@dataclass
class _Scene:
    """What one round reads once and its three phases share."""

    conn: Connection
    settings: Alerting
    now: datetime
    force: InForce
    rules: Mapping[str, Rule] = field(default_factory=dict)
    """The policy's rules by id: titles, dependencies and resolve sentences (empty without a policy)."""
    counts: Round = field(default_factory=Round)
    agents: Dict[Any, RowMapping] = field(default_factory=dict)
    """The nodes this round has read, by id: only those of the incidents and findings it looks at."""
    opened: Dict[int, Optional[datetime]] = field(default_factory=dict)
    """Incidents this round opened, with when a round must look at each again (None: next round)."""

    def read_nodes(self, ids: Iterable[Any]) -> None:
        """Read the nodes not read yet among ``ids``; one still missing afterwards is revoked."""
        for chunk in in_lists(sorted({i for i in ids if i not in self.agents})):
            query = _AGENTS_DECIDING.where(agents.c.id.in_(chunk))
            self.agents.update({a["id"]: a for a in self.conn.execute(query).mappings()})


# Built once: a statement built per call (``.values(...)`` with the values in it) cost more than its
# running, and a round that opens an incident for each node of a fleet runs these thousands of times.
_EVENT = incident_events.insert()
_OUTBOX = outbox.insert()
_OPEN = incidents.insert()
_THE_INCIDENT = incidents.c.id == bindparam("b_id")
_NOTIFIED = update(incidents).where(_THE_INCIDENT).values(last_notified_at=bindparam("b_at"))
_WHOLE = select(incidents).where(_THE_INCIDENT)
_RESOLVE = (
    update(incidents)
    .where(_THE_INCIDENT, incidents.c.status == "open")
    .values(status="resolved", resolved_at=bindparam("b_at"))
)
_CHECK_AGAIN = update(incidents).where(_THE_INCIDENT).values(next_check_at=bindparam("b_next"))

RECHECK_AT_LEAST = timedelta(hours=1)
"""The longest a round leaves an open incident unread.  A round reads an incident when a reminder or
re-send can fall due, or when its finding, node or windows changed; this bound covers what it cannot
see change in the incident's own row (a node moved to another group, whose routes differ)."""


def event(
    conn: Connection,
    incident_id: int,
    kind: str,
    now: datetime,
    *,
    channel: Optional[str] = None,
    actor: Optional[str] = None,
    detail: Optional[str] = None,
) -> None:
    conn.execute(
        _EVENT,
        {"incident_id": incident_id, "at": now, "kind": kind, "channel": channel, "actor": actor, "detail": detail},
    )


def view(incident: Mapping[Any, Any], agent: Mapping[Any, Any]) -> Dict[str, Any]:
    """What routing and channels see of an incident."""
    return {
        **dict(incident),
        "hostname": agent["hostname"],
        "tenant": agent["tenant"],
        "group": agent["group_name"],
        "labels": agent["labels"] or {},
    }


def enqueue(
    conn: Connection,
    settings: Alerting,
    incident: Mapping[Any, Any],
    agent: Mapping[Any, Any],
    kind: str,
    now: datetime,
    channels: Optional[List[str]] = None,
    message: Optional[str] = None,
) -> int:
    """Outbox rows for ``kind`` (trigger/repeat/update/resolve) to the routed (or given) channels,
    each carrying ``message`` (by default the incident's own sentence)."""
    names = channels if channels is not None else [t.channel for t in route(settings, view(incident, agent))]
    if names:
        said = message if message is not None else incident.get("message")
        row = {
            "incident_id": incident["id"],
            "event": kind,
            "message": said,
            "created_at": now,
            "next_attempt_at": now,
            "attempts": 0,
        }
        conn.execute(_OUTBOX, [{**row, "channel": name} for name in names])
    if names and kind in ("trigger", "repeat"):
        conn.execute(_NOTIFIED, {"b_id": incident["id"], "b_at": now})
    return len(names)


def _open(scene: _Scene, opening: Opening) -> int:
    conn, now, agent = scene.conn, scene.now, opening.agent
    result = conn.execute(
        _OPEN,
        {
            "agent_id": agent["id"],
            "rule_id": opening.rule_id,
            "kind": opening.kind,
            "status": "open",
            "severity": opening.severity,
            "title": opening.title,
            "message": opening.message[:MESSAGE_MAX],
            "controls": opening.controls,
            "observed": opening.observed,
            "dedup_key": f"tillsyn/{agent['id']}/{opening.rule_id}",
            "opened_at": now,
        },
    )
    key = result.inserted_primary_key
    assert key is not None
    incident_id = int(key[0])
    scene.opened[incident_id] = None
    event(conn, incident_id, "detected", now, detail=opening.message[:2000])
    scene.counts.opened += 1
    window = scene.force.window(agent)
    if window is not None:
        event(
            conn,
            incident_id,
            "held",
            now,
            detail=f"maintenance window {window['id']} until {window['ends_at']:%Y-%m-%d %H:%M} UTC: "
            f"{window['reason']}",
        )
        scene.counts.held += 1
        return incident_id
    row = _whole(conn, incident_id)
    queued = enqueue(conn, scene.settings, row, agent, "trigger", now)
    scene.counts.notified += queued
    later = timedelta(seconds=scene.settings.soonest_due_s()) if queued else RECHECK_AT_LEAST
    scene.opened[incident_id] = now + later  # no reminder or re-send can be due before
    return incident_id


def _window_ended(window: Mapping[Any, Any]) -> str:
    how = "was cancelled" if ended_at(window) < window["ends_at"] else "ended"
    return f"{window_span(window)} allowed this and {how} at {ended_at(window):%Y-%m-%d %H:%M} UTC; it is still so"


_AGENT_DECIDING = (
    agents.c.id,
    agents.c.hostname,
    agents.c.tenant,
    agents.c.group_name,
    agents.c.labels,
    agents.c.silent,
    agents.c.last_heartbeat_at,
    agents.c.enrolled_at,
)
_AGENTS_DECIDING = select(*_AGENT_DECIDING).where(agents.c.revoked_at.is_(None))
"""What a round reads of every node (routing, windows, waivers, silence): not the keys, the health
report or the ledger's head, which it never uses (docs/benchmarks.md, the duty round: reading whole
rows was about a third of a round's CPU with 2,000 nodes, before a node's health JSON is counted)."""
_AGENT_GONE = select(*_AGENT_DECIDING).where(agents.c.id == bindparam("b_id"))
"""A revoked node's row, for routing the resolve notice of an incident its revocation ended."""


def run_round(conn: Connection, settings: Alerting, now: datetime, policy: Optional[Policy] = None) -> Round:
    """One round: open incidents for silent nodes, then for lasting deviations; resolve what
    cleared and remind of what stays open; tell who heard a trigger when its finding turned unknown.
    ``policy`` gives incidents their rule's title, dependencies and resolve sentence; without it
    (tests of the mechanics) the finding's sentence is the title and nothing depends on anything."""
    # what deciding needs, without the JSON columns: most rounds notify nothing, and a fleet has
    # hundreds of open incidents; the whole row is read for the few that are sent (_whole)
    scene = _Scene(
        conn, settings, now, in_force(conn, now), {r.id: r for r in policy.rules} if policy is not None else {}
    )
    _open_silent(scene)
    _open_deviations(scene)
    _resolve_or_remind(scene)
    scene.counts.updated += _tell_changes(scene)
    return scene.counts


_OPEN_SILENT = select(incidents.c.agent_id).where(incidents.c.status == "open", incidents.c.kind == SILENT)


def _open_silent(scene: _Scene) -> None:
    """Silent nodes: one incident per node."""
    silent = scene.conn.execute(_AGENTS_DECIDING.where(agents.c.silent.is_(True))).mappings().all()
    if not silent:
        return
    scene.agents.update({agent["id"]: agent for agent in silent})
    already = set(scene.conn.execute(_OPEN_SILENT).scalars())
    for agent in silent:
        if agent["id"] not in already:
            since = agent["last_heartbeat_at"] or agent["enrolled_at"]
            opening = Opening(
                agent,
                SILENT,
                SILENT,
                "high",
                "Node stopped sending heartbeats",
                [],
                {"last_heartbeat_at": since.isoformat() if since else None},
                f"no heartbeat since {since:%Y-%m-%d %H:%M:%S} UTC",
            )
            _open(scene, opening)


def _open_deviations(scene: _Scene) -> None:
    """Deviations that lasted ``open_after_s``.

    Evidence that *went* stale is news; a rule that never had evidence (a node just enrolled, a
    collector turned off) shows as stale on the finding but pages nobody.
    """
    settings = scene.settings
    deviating = findings.c.status == "failing"
    if settings.stale_incidents:
        deviating = or_(deviating, and_(findings.c.status == "stale", findings.c.evidence_at.is_not(None)))
    already_open = (
        select(incidents.c.id)
        .where(
            incidents.c.agent_id == findings.c.agent_id,
            incidents.c.rule_id == findings.c.rule_id,
            incidents.c.status == "open",
        )
        .exists()
    )
    lasted = findings.c.since <= scene.now - timedelta(seconds=settings.open_after_s)
    candidates = scene.conn.execute(select(findings).where(deviating, lasted, ~already_open)).mappings().all()
    failing_causes = _failing_causes(scene.conn, scene.rules, candidates)
    scene.read_nodes(f["agent_id"] for f in candidates)
    wide_open = _centre_wide_open(scene.conn, {f["rule_id"] for f in candidates if _centre_wide(f["observed"])})
    for finding in candidates:
        node = scene.agents.get(finding["agent_id"])
        if node is None:
            continue
        if finding["status"] == "stale" and node["silent"]:
            continue  # the silent incident covers it
        if scene.force.accepted(node, finding["rule_id"]):
            continue
        rule = scene.rules.get(finding["rule_id"])
        if rule is not None and any((node["id"], cause) in failing_causes for cause in rule.depends_on):
            scene.counts.suppressed += 1  # one cause, one page: the node page shows it as suppressed
            continue
        if _centre_wide(finding["observed"]):
            if finding["rule_id"] in wide_open:
                scene.counts.suppressed += 1  # one centre-wide cause, one page (on the first node found)
                continue
            wide_open.add(finding["rule_id"])
        opening = Opening(
            node,
            finding["rule_id"],
            "finding",
            finding["severity"],
            rule.title if rule is not None else finding["message"][:300],
            list(finding["controls"] or []),
            finding["observed"],
            finding["message"],
        )
        incident_id = _open(scene, opening)
        allowed = scene.force.ended_allowing(node, finding["rule_id"], finding["since"])
        if allowed is not None:  # the deviation outlived the window that allowed it (M11)
            event(scene.conn, incident_id, "window_ended", scene.now, detail=_window_ended(allowed))


def _centre_wide(observed: Any) -> bool:
    """A verdict of the centre's own measures that every node has for one cause in the centre (a
    non-admin holding every tenant, the retention duty overdue): it opens one incident, not one per node."""
    return isinstance(observed, dict) and observed.get("centre_wide") is True


def _centre_wide_open(conn: Connection, rule_ids: Set[str]) -> Set[str]:
    """Those of ``rule_ids`` with an open incident already opened for a centre-wide cause."""
    if not rule_ids:
        return set()
    query = select(incidents.c.rule_id, incidents.c.observed).where(
        incidents.c.status == "open", incidents.c.rule_id.in_(sorted(rule_ids))
    )
    return {row.rule_id for row in conn.execute(query) if _centre_wide(row.observed)}


def _resolve_or_remind(scene: _Scene) -> None:
    """Resolve what cleared (and stayed clear for ``resolve_after_s``), remind of what stays open."""
    conn, settings, now = scene.conn, scene.settings, scene.now
    settle = now - timedelta(seconds=settings.resolve_after_s)
    cleared = _findings_cleared(conn, settle)
    rows = _to_decide(scene, cleared)
    scene.read_nodes(i["agent_id"] for i in rows)
    # with no routes nothing is reminded (_remind): the outbox need not be read
    notified = [i["id"] for i in rows if i["last_notified_at"] is not None]
    sent = _last_sent(conn, notified) if settings.routes else {}
    later = [{"b_id": i, "b_next": at} for i, at in scene.opened.items() if at is not None]
    for incident in rows:
        owner = scene.agents.get(incident["agent_id"])
        reason = _cleared(incident, owner, cleared, scene.force)
        if reason is not None:
            _resolve(scene, incident, owner, reason)
        elif owner is not None:
            queued, next_check = _remind(scene, incident, owner, sent.get(incident["id"], {}))
            scene.counts.notified += queued
            if next_check is not None:
                next_check = min(next_check, now + RECHECK_AT_LEAST)
            if _was_due(incident, now) and next_check != incident["next_check_at"]:
                later.append({"b_id": incident["id"], "b_next": next_check})
    if later:
        conn.execute(_CHECK_AGAIN, later)


def _was_due(incident: Mapping[Any, Any], now: datetime) -> bool:
    """Read because due, not only for another reason (a silent node's, say, read every round): only
    then is its next look written, so a round that changes nothing writes nothing."""
    return incident["next_check_at"] is None or incident["next_check_at"] <= now


_DUE = or_(incidents.c.next_check_at.is_(None), incidents.c.next_check_at <= bindparam("b_now"))
_NODE_REVOKED = exists().where(agents.c.id == incidents.c.agent_id, agents.c.revoked_at.is_not(None))


def _to_decide(scene: _Scene, cleared: Mapping[int, str]) -> List[RowMapping]:
    """The open incidents this round must look at: those due (a reminder or re-send can fall due, or
    never looked at), silent nodes', revoked nodes', those whose finding let them resolve, and those
    of nodes a waiver or maintenance window covers.  Not the rest: a fleet keeps thousands of
    incidents open whose state no round changes, and reading each of them every round was most of
    the round (docs/benchmarks.md, the fleet simulation)."""
    conn = scene.conn
    base = select(*_DECIDING).where(incidents.c.status == "open")
    rows = {
        r["id"]: r
        for r in conn.execute(
            base.where(or_(_DUE, incidents.c.kind == SILENT, _NODE_REVOKED)), {"b_now": scene.now}
        ).mappings()
    }
    wanted = [i for i in cleared if i not in rows]
    covers = scene.force.covering()
    covered = list(conn.execute(select(agents.c.id).where(covers)).scalars()) if covers is not None else []
    for column, values in ((incidents.c.id, wanted), (incidents.c.agent_id, covered)):
        for chunk in in_lists(values):
            rows.update({r["id"]: r for r in conn.execute(base.where(column.in_(chunk))).mappings()})
    return [rows[i] for i in sorted(rows) if i not in scene.opened]


def _resolve(scene: _Scene, incident: Mapping[Any, Any], owner: Optional[Mapping[Any, Any]], reason: str) -> None:
    """Resolve one incident; whoever was paged hears it resolved, for a revoked node too."""
    conn, now = scene.conn, scene.now
    done = conn.execute(_RESOLVE, {"b_id": incident["id"], "b_at": now})
    if not done.rowcount:
        return
    event(conn, incident["id"], "resolved", now, detail=reason)
    scene.counts.resolved += 1
    notified = [
        r.channel
        for r in conn.execute(
            select(outbox.c.channel)
            .where(outbox.c.incident_id == incident["id"], outbox.c.event == "trigger")
            .distinct()
        )
    ]
    if notified:
        routed = owner or conn.execute(_AGENT_GONE, {"b_id": incident["agent_id"]}).mappings().one()
        resolved = dict(_whole(conn, incident["id"]), status="resolved", resolved_at=now)
        said = _resolve_sentence(resolved, routed, reason, scene.rules.get(incident["rule_id"]), now)
        enqueue(conn, scene.settings, resolved, routed, "resolve", now, notified, said)


def _failing_causes(conn: Connection, rules: Mapping[str, Rule], candidates: Any) -> Set[Tuple[str, str]]:
    """(node, rule) of every cause named by a candidate's ``depends_on`` that fails now."""
    causes = {cause for f in candidates if f["rule_id"] in rules for cause in rules[f["rule_id"]].depends_on}
    if not causes:
        return set()
    query = select(findings.c.agent_id, findings.c.rule_id).where(
        findings.c.rule_id.in_(sorted(causes)), findings.c.status == "failing"
    )
    return {(row.agent_id, row.rule_id) for row in conn.execute(query)}


def _resolve_sentence(
    incident: Mapping[Any, Any], agent: Mapping[Any, Any], reason: str, rule: Optional[Rule], now: datetime
) -> str:
    """What changed, said of what had failed: ``UPS acc@ups1 back on line power``."""
    if incident["kind"] == SILENT:
        return f"{agent['hostname']} sends heartbeats again" if reason == "heartbeats are back" else reason
    if reason == "passing again" and rule is not None:
        return resolved_sentence(rule, incident["observed"], now)
    return f"{incident['title']}: {reason}"


_TOLD = incident_events.alias("told")


def _told_since(kind: str) -> Any:
    """An event of ``kind`` on the incident at or after its finding's current status began."""
    return (
        exists()
        .where(_TOLD.c.incident_id == incidents.c.id, _TOLD.c.kind == kind, _TOLD.c.at >= findings.c.since)
        .correlate(incidents, findings)
    )


def _tell_changes(scene: _Scene) -> int:
    """An open incident whose finding is no longer failing but unknown (the evidence no longer shows
    the deviation, nor that it is gone) stays open: unknown is never passing.  Whoever heard the
    trigger is told once, and again if it then fails once more; both go on the timeline."""
    conn, now = scene.conn, scene.now
    told = 0
    base = select(incidents.c.id, incidents.c.agent_id, findings.c.message).join(findings, _FINDING_OF)
    unknown = base.where(_OPEN_FINDING, findings.c.status == "unknown", ~_told_since("unknown"))
    again = base.where(
        _OPEN_FINDING,
        findings.c.status == "failing",
        exists().where(incident_events.c.incident_id == incidents.c.id, incident_events.c.kind == "unknown"),
        ~_told_since("unknown"),
        ~_told_since("failing_again"),
    )
    for kind, query, prefix in (
        ("unknown", unknown, "no longer failing; now unknown: "),
        ("failing_again", again, "failing again: "),
    ):
        rows = conn.execute(query).mappings().all()
        scene.read_nodes(row["agent_id"] for row in rows)
        for row in rows:
            said = prefix + str(row["message"])
            event(conn, row["id"], kind, now, detail=said[:2000])
            heard = [
                r.channel
                for r in conn.execute(
                    select(outbox.c.channel)
                    .where(outbox.c.incident_id == row["id"], outbox.c.event == "trigger")
                    .distinct()
                )
            ]
            owner = scene.agents.get(row["agent_id"])
            if heard and owner is not None:
                enqueue(conn, scene.settings, _whole(conn, row["id"]), owner, "update", now, heard, said)
            told += 1
    return told


_FINDING_OF = and_(incidents.c.agent_id == findings.c.agent_id, incidents.c.rule_id == findings.c.rule_id)
_OPEN_FINDING = and_(incidents.c.status == "open", incidents.c.kind != SILENT)
_PASSING_SINCE = (
    select(incidents.c.id)
    .join(findings, _FINDING_OF)
    .where(
        _OPEN_FINDING,
        findings.c.status == "passing",
        findings.c.since <= bindparam("settle", type_=findings.c.since.type),
    )
)
_FINDING_GONE = (
    select(incidents.c.id).outerjoin(findings, _FINDING_OF).where(_OPEN_FINDING, findings.c.agent_id.is_(None))
)


def _findings_cleared(conn: Connection, settle: datetime) -> Dict[int, str]:
    """The open incidents of kind "finding" whose finding would let them resolve, with the reason:
    passing since ``settle`` or earlier, or gone (the rule no longer in force for the node);
    :func:`_cleared` checks revocation, silent kind and waivers first.  Only these rows are read: a
    fleet has hundreds of open deviations whose findings still fail, and a round that read each of
    them (the duty thread, beside the requests) cost SQLite one hand-over of the interpreter per row."""
    reasons = {
        incident_id: "passing again" for incident_id in conn.execute(_PASSING_SINCE, {"settle": settle}).scalars()
    }
    reasons.update(
        {incident_id: "rule no longer in force for this node" for incident_id in conn.execute(_FINDING_GONE).scalars()}
    )
    return reasons


def _cleared(
    incident: Mapping[Any, Any],
    agent: Optional[Mapping[Any, Any]],
    cleared: Mapping[int, str],
    force: InForce,
) -> Optional[str]:
    if agent is None:
        return "node revoked"
    if incident["kind"] == SILENT:
        return None if agent["silent"] else "heartbeats are back"
    accepted = force.accepted(agent, incident["rule_id"])
    if accepted:
        return f"accepted: {accepted}"
    return cleared.get(incident["id"])


_DECIDING = (
    incidents.c.id,
    incidents.c.agent_id,
    incidents.c.rule_id,
    incidents.c.kind,
    incidents.c.severity,
    incidents.c.controls,
    incidents.c.last_notified_at,
    incidents.c.acknowledged_at,
    incidents.c.next_check_at,
)
"""The columns of an open incident a round decides on (resolve, remind, route) before anything is sent."""


def _whole(conn: Connection, incident_id: int) -> RowMapping:
    """An incident's whole row, for routing and the outbox."""
    return conn.execute(_WHOLE, {"b_id": incident_id}).mappings().one()


def _remind(
    scene: _Scene, incident: Mapping[Any, Any], agent: Mapping[Any, Any], sent: Mapping[str, datetime]
) -> Tuple[int, Optional[datetime]]:
    """Notify an incident held so far (its window ended), or remind of one still open; say how many
    notifications were queued and when the incident must be looked at again (None: next round).

    ``sent`` is when each channel was last given this incident (trigger or repeat): each channel
    keeps its own rhythm, so a channel's frequent re-sends to keep an alert firing (Alertmanager)
    never stand in for a reminder by mail.  Acknowledging stops reminders, but not those re-sends,
    which only keep the alert firing while the incident is open.
    """
    conn, settings, now = scene.conn, scene.settings, scene.now
    if not settings.routes:
        return 0, now + RECHECK_AT_LEAST  # nowhere to send: nothing is held back, nothing is due
    if scene.force.window(agent) is not None:
        return 0, None  # held: looked at every round, so it is sent when the window ends
    if incident["last_notified_at"] is None:
        if not route(settings, view(incident, agent)):
            # no route takes it (most incidents of a fleet with routes for some rules only)
            return 0, now + RECHECK_AT_LEAST
        return enqueue(conn, settings, _whole(conn, incident["id"]), agent, "trigger", now), None
    oldest = min([incident["last_notified_at"], *sent.values()])
    soonest = oldest + timedelta(seconds=settings.soonest_due_s())
    if soonest > now:
        return 0, soonest  # no channel can be due yet: skip routing this incident
    incident = _whole(conn, incident["id"])
    due, next_check = [], None
    for target in route(settings, view(incident, agent)):
        last = sent.get(target.channel, incident["last_notified_at"])
        at = _due_at(settings, target, last, incident["acknowledged_at"] is None)
        if at is not None and at <= now:
            due.append(target.channel)
            at = _due_at(settings, target, now, incident["acknowledged_at"] is None)
        if at is not None and (next_check is None or at < next_check):
            next_check = at
    queued = enqueue(conn, settings, incident, agent, "repeat", now, due) if due else 0
    return queued, next_check or now + RECHECK_AT_LEAST


def _due_at(settings: Alerting, target: Any, last: datetime, unacknowledged: bool) -> Optional[datetime]:
    """When ``target``'s channel, last given the incident at ``last``, must be given it again: a re-send
    that keeps the receiver's alert firing (Alertmanager), or a reminder while nobody acknowledged it."""
    channel = settings.channels.get(target.channel)
    if channel is None:
        return None
    times = []
    keep_firing = channel.keep_firing_s()
    if keep_firing is not None:
        times.append(last + timedelta(seconds=keep_firing))
    if channel.takes_reminders and unacknowledged:
        times.append(last + timedelta(seconds=target.repeat_interval_s))
    return min(times) if times else None


def _last_sent(conn: Connection, incident_ids: List[int]) -> Dict[int, Dict[str, datetime]]:
    """Per open incident and channel, when it was last queued a trigger or repeat."""
    out: Dict[int, Dict[str, datetime]] = {}
    for chunk in in_lists(incident_ids):
        rows = conn.execute(
            select(outbox.c.incident_id, outbox.c.channel, func.max(outbox.c.created_at))
            .where(
                outbox.c.incident_id.in_(chunk),
                outbox.c.event.in_(("trigger", "repeat")),
            )
            .group_by(outbox.c.incident_id, outbox.c.channel)
        )
        for incident_id, channel, last in rows:
            out.setdefault(int(incident_id), {})[channel] = last
    return out


def look_again_at_open_incidents(conn: Connection) -> None:
    """Have the next round look at every open incident (after a change of routes or channels)."""
    conn.execute(
        update(incidents)
        .where(incidents.c.status == "open", incidents.c.next_check_at.is_not(None))
        .values(next_check_at=None)
    )


def acknowledge(conn: Connection, incident_id: int, actor: str, now: datetime, note: Optional[str] = None) -> bool:
    done = conn.execute(
        update(incidents)
        .where(and_(incidents.c.id == incident_id, incidents.c.acknowledged_at.is_(None)))
        .values(acknowledged_at=now, acknowledged_by=actor)
    )
    if done.rowcount:
        event(conn, incident_id, "acknowledged", now, actor=actor, detail=note)
    return bool(done.rowcount)
