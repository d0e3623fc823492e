"""M13 anonymisation: the privacy setting each node's agent reports in its heartbeats and reports
(pseudonymisation on or off, which key), against its tenant's policy.  Pure."""

from __future__ import annotations

from typing import Any, Collection, Mapping, Optional

from central.judging.own.rules import ANONYMISATION
from evidence.rules import Result, Verdict


def _scope(key_id: Optional[str], sharing: int) -> str:
    if not key_id:
        return "with a key it does not name"
    if sharing > 1:
        return f"with key {key_id}, shared by {sharing} nodes (one pseudonym per person across them)"
    return f"with key {key_id}, its own (pseudonyms differ from other nodes')"


def judge(
    hostname: str,
    tenant: Optional[str],
    agent_version: Optional[str],
    health: Optional[Mapping[str, Any]],
    optional: Collection[str],
    sharing: Mapping[str, int],
) -> Result:
    """``optional``: tenants whose policy does not ask for pseudonyms; ``sharing``: nodes per key id."""
    privacy = (health or {}).get("privacy")
    asks = tenant not in optional
    whose = f"tenant {tenant}'s policy" if tenant else "the policy for nodes without a tenant"
    if not isinstance(privacy, Mapping) or not isinstance(privacy.get("pseudonymise"), bool):
        version = f" (version {agent_version})" if agent_version else ""
        message = f"node {hostname}'s agent{version} does not report whether it pseudonymises usernames"
        return Result(ANONYMISATION, Verdict.UNKNOWN, None, message)
    key_id = privacy.get("key_id")
    observed = {
        "pseudonymise": privacy["pseudonymise"],
        "key_id": key_id,
        "nodes_sharing_key": sharing.get(key_id, 0) if key_id else 0,
        "tenant_asks_for_pseudonyms": asks,
    }
    if privacy["pseudonymise"]:
        scope = _scope(key_id, sharing.get(key_id, 0) if key_id else 0)
        return Result(
            ANONYMISATION, Verdict.PASSING, observed, f"node {hostname} pseudonymises usernames and home paths {scope}"
        )
    if asks:
        message = (
            f"node {hostname} sends usernames in clear (pseudonymisation is off) while {whose} asks for pseudonyms"
        )
        return Result(ANONYMISATION, Verdict.FAILING, observed, message)
    message = f"node {hostname} sends usernames in clear; {whose} does not ask for pseudonyms"
    return Result(ANONYMISATION, Verdict.PASSING, observed, message)
