"""A node's state (passing, failing, unknown, stale, silent, revoked), in Python and in SQL.

The API list, the fleet page and the metrics all filter, page and count nodes with these pieces, so
a page of a large fleet reads only its own nodes and the one rule lives in one place.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

from sqlalchemy import Connection, Select, Subquery, and_, case, func, literal, select, true

from central.db.schema import agents, findings

STATES = ("silent", "failing", "unknown", "stale", "passing")
"""The states of a node that is not revoked, worst first."""
FLEET_STATES = ("failing", "unknown", "stale", "silent", "passing", "revoked")
PROBLEMS = ("failing", "unknown", "stale")
"""The finding statuses other than passing, worst first."""
LOOKED_UP = 500
"""Up to this many nodes their findings are counted node by node; past it, in passes over indexes."""


def node_state(silent: bool, counts: Mapping[str, int]) -> str:
    """The worst of: silent, failing, unknown, stale; passing only when every finding passes."""
    if silent:
        return "silent"
    for state in PROBLEMS:
        if counts.get(state):
            return state
    return "passing" if counts.get("passing") else "stale"


def problem_counts() -> Subquery:
    """Per node with any finding not passing: how many fail, are unknown, are stale. Read from the
    index on (status, agent_id) alone: at scale almost every finding passes, so a small share of it."""
    sums = [func.sum(case((findings.c.status == s, 1), else_=0)).label(s) for s in PROBLEMS]
    return (
        select(findings.c.agent_id, *sums)
        .where(findings.c.status.in_(PROBLEMS))
        .group_by(findings.c.agent_id)
        .subquery("problems")
    )


def state_sql(problems: Subquery) -> Any:
    """The same order as node_state, revoked first; a node without any finding yet is stale (no
    evidence), never passing. ``problems`` is problem_counts() joined (outer) to ``agents``."""
    any_finding = select(findings.c.agent_id).where(findings.c.agent_id == agents.c.id).exists()
    return case(
        (agents.c.revoked_at.is_not(None), literal("revoked")),
        (agents.c.silent.is_(True), literal("silent")),
        *((problems.c[s] > 0, literal(s)) for s in PROBLEMS),
        (any_finding, literal("passing")),
        else_=literal("stale"),
    )


def node_filter(visible: Any, search: Optional[str]) -> List[Any]:
    """Conditions on ``agents``: the caller's tenants (``visible``, None for all) and part of the hostname."""
    conditions = [] if visible is None else [visible]
    if search:
        conditions.append(agents.c.hostname.icontains(search, autoescape=True))  # same on both databases
    return conditions


def node_page(
    columns: Sequence[Any], visible: Any, search: Optional[str], state: Optional[str], limit: int, offset: int
) -> Select[Any]:
    """One page of nodes by hostname: only with a state to filter on are their findings looked at."""
    query = select(*columns).select_from(agents)
    conditions = node_filter(visible, search)
    if state:
        problems = problem_counts()
        query = query.outerjoin(problems, problems.c.agent_id == agents.c.id)
        conditions.append(state_sql(problems) == state)
    return query.where(and_(true(), *conditions)).order_by(agents.c.hostname, agents.c.id).limit(limit).offset(offset)


def finding_counts(conn: Connection, agent_ids: Sequence[str]) -> Dict[str, Dict[str, int]]:
    """Each node's findings by status (only the statuses it has). A page of nodes is looked up through
    the primary key (agent_id, rule_id); a large part of the fleet is counted in two passes over indexes
    (totals by the primary key, the rest by status) instead of reading every finding, and the answer
    may then hold other nodes too."""
    out: Dict[str, Dict[str, int]] = {}
    if len(agent_ids) <= LOOKED_UP:
        by_status = (
            select(findings.c.agent_id, findings.c.status, func.count())
            .where(findings.c.agent_id.in_(agent_ids))
            .group_by(findings.c.agent_id, findings.c.status)
        )
        for agent_id, status, count in conn.execute(by_status).all():
            out.setdefault(agent_id, {})[status] = count
        return out
    totals = select(findings.c.agent_id, func.count()).group_by(findings.c.agent_id)
    out = {agent_id: {"passing": total} for agent_id, total in conn.execute(totals).all()}
    for agent_id, *numbers in conn.execute(select(problem_counts())).all():
        # two statements: on PostgreSQL a finding written between them may show in one only
        counts = out.setdefault(agent_id, {"passing": 0})
        for status, number in zip(PROBLEMS, numbers):
            if number:
                counts[status] = number
                counts["passing"] = max(0, counts["passing"] - number)
    return out


def count_states(conn: Connection, *conditions: Any) -> Dict[str, int]:
    """How many nodes (matching ``conditions`` on agents) are in each of FLEET_STATES."""
    problems = problem_counts()
    state = state_sql(problems).label("state")
    counted = (
        select(state, func.count())
        .select_from(agents)
        .outerjoin(problems, problems.c.agent_id == agents.c.id)
        .where(and_(true(), *conditions))
        .group_by(state)
    )
    counts = dict.fromkeys(FLEET_STATES, 0)
    for name, number in conn.execute(counted):
        counts[name] = number
    return counts
