"""The centre's own measures as rules: ids, titles and controls, for the findings they keep.

They are not in the policy file (nothing on a node is checked): the duty round judges them from
the centre's own tables (``judge.py``), and a policy reload never retires their findings."""

from __future__ import annotations

from typing import Dict

from evidence.rules import Check, Rule

COLLECTOR = "centre"
"""What ``collector`` the rules name: the centre itself, not a collector of the node."""
_NEVER_STALE = 10 * 365 * 86400.0


def _rule(rule_id: str, title: str, control: str, severity: str, iso: str, gdpr: str) -> Rule:
    return Rule(
        id=rule_id,
        version=1,
        title=title,
        controls=(control,),
        severity=severity,
        collector=COLLECTOR,
        check=Check(path=""),
        max_age_s=_NEVER_STALE,
        iso27001=tuple(iso.split()),
        gdpr=tuple(gdpr.split()),
    )


ERASURE = _rule(
    "centre-retention-erasure",
    "The node's evidence is kept no longer than retention allows, and erased on request in time",
    "M08",
    "high",
    "A.8.10",
    "5(1)(e) 17",
)
SEPARATION = _rule(
    "centre-tenant-separation",
    "The node belongs to a tenant, seen only by people granted it",
    "M10",
    "high",
    "A.8.3 A.8.22",
    "5(1)(b) 25",
)
NOTIFICATION = _rule(
    "centre-incident-notification",
    "The node's incidents were notified and acknowledged in time",
    "M12",
    "high",
    "A.5.24 A.5.25 A.5.26",
    "33 34",
)
ANONYMISATION = _rule(
    "centre-pseudonyms",
    "The node pseudonymises usernames where its tenant asks for it",
    "M13",
    "high",
    "A.8.11",
    "32(1)(a) 25",
)

OWN_RULES: Dict[str, Rule] = {r.id: r for r in (ERASURE, SEPARATION, NOTIFICATION, ANONYMISATION)}
