"""M10: a node without a tenant, a non-admin holding every tenant, and who sees a node."""

from __future__ import annotations

from datetime import datetime, timezone

from central.judging.own.separation import Person, judge, people_of
from evidence.rules import Verdict

ADMIN = Person("alice", "admin", ["*"])
VIEWER = Person("carol", "viewer", ["acme"])
OTHER = Person("olle", "operator", ["globex"])


def test_a_tenanted_node_seen_by_its_granted_people_passes() -> None:
    result = judge("web1", "acme", [ADMIN, VIEWER, OTHER])
    assert result.verdict is Verdict.PASSING
    assert result.message == "node web1 belongs to tenant acme, seen by alice (admin, every tenant), carol (viewer)"
    assert [p["username"] for p in result.observed["seen_by"]] == ["alice", "carol"]


def test_a_node_without_a_tenant_fails() -> None:
    result = judge("web2", None, [ADMIN])
    assert result.verdict is Verdict.FAILING
    assert result.message == "node web2 belongs to no tenant"


def test_a_non_admin_holding_every_tenant_fails_every_node() -> None:
    wide = Person("vera", "viewer", ["*"])
    result = judge("web1", "acme", [ADMIN, wide])
    assert result.verdict is Verdict.FAILING
    assert result.message == "vera (viewer, every tenant) sees every tenant without being an admin"
    assert result.observed["every_tenant_not_admin"] == ["vera"]
    assert result.observed["centre_wide"] is True  # one incident for it, not one per node


def test_both_problems_are_said() -> None:
    result = judge("web3", None, [Person("a", "operator", ["*"]), Person("b", "viewer", ["*"])])
    assert result.message == (
        "node web3 belongs to no tenant; a (operator, every tenant), b (viewer, every tenant) see every tenant "
        "without being an admin"
    )
    assert result.observed["centre_wide"] is False  # the node's own cause pages for the node


def test_disabled_accounts_see_nothing() -> None:
    now = datetime(2026, 12, 7, tzinfo=timezone.utc)
    rows = [
        {"username": "vera", "role": "viewer", "tenants": ["*"], "disabled_at": now},
        {"username": "carol", "role": "viewer", "tenants": ["acme"], "disabled_at": None},
    ]
    people = people_of(rows)
    assert [p.username for p in people] == ["carol"]
    assert judge("web1", "acme", people).verdict is Verdict.PASSING
