"""M13: the privacy setting an agent reports, against its tenant's policy; older agents are unknown."""

from __future__ import annotations

from central.judging.own.anonymisation import judge
from evidence.rules import Verdict


def _health(on: bool, key_id: str | None = "0123456789ab") -> dict:
    return {"spool_depth": 0, "last_errors": [], "privacy": {"pseudonymise": on, "key_id": key_id if on else None}}


def test_pseudonyms_with_a_shared_key_pass() -> None:
    result = judge("web1", "acme", "0.1.0", _health(True), set(), {"0123456789ab": 3})
    assert result.verdict is Verdict.PASSING
    assert result.message == (
        "node web1 pseudonymises usernames and home paths with key 0123456789ab, shared by 3 nodes "
        "(one pseudonym per person across them)"
    )
    assert result.observed["nodes_sharing_key"] == 3


def test_a_key_of_its_own_is_said() -> None:
    result = judge("web1", "acme", "0.1.0", _health(True), set(), {"0123456789ab": 1})
    assert "its own (pseudonyms differ from other nodes')" in result.message


def test_usernames_in_clear_fail_where_the_tenant_asks_for_pseudonyms() -> None:
    result = judge("web1", "acme", "0.1.0", _health(False), set(), {})
    assert result.verdict is Verdict.FAILING
    assert result.message == (
        "node web1 sends usernames in clear (pseudonymisation is off) while tenant acme's policy asks for pseudonyms"
    )


def test_usernames_in_clear_pass_where_the_tenant_does_not_ask() -> None:
    result = judge("lab1", "lab", "0.1.0", _health(False), {"lab"}, {})
    assert result.verdict is Verdict.PASSING
    assert result.message == "node lab1 sends usernames in clear; tenant lab's policy does not ask for pseudonyms"


def test_a_node_without_a_tenant_follows_the_default_policy() -> None:
    result = judge("web9", None, "0.1.0", _health(False), {"lab"}, {})
    assert result.verdict is Verdict.FAILING
    assert "while the policy for nodes without a tenant asks for pseudonyms" in result.message


def test_an_older_agent_that_does_not_report_it_is_unknown() -> None:
    for health in (None, {"spool_depth": 0, "last_errors": []}, {"privacy": {"pseudonymise": "yes"}}):
        result = judge("old1", "acme", "0.0.9", health, set(), {})
        assert result.verdict is Verdict.UNKNOWN
        assert result.message == "node old1's agent (version 0.0.9) does not report whether it pseudonymises usernames"
