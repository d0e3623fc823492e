"""``auditctl -s``, ``auditctl -l`` and audit rules files (pure).

``auditctl -s`` (auditctl(8)) prints ``key value`` lines: ``enabled`` 0 (off), 1 (on) or 2 (on and
locked until reboot), ``pid`` of the audit daemon receiving events (0: none), ``failure`` mode,
``lost`` events, ``backlog_limit``.  ``auditctl -l`` prints one loaded rule per line, or
``No rules``.  A rules file (audit.rules(7)) holds rules and control lines (``-D``, ``-b``, ``-f``,
``-e``, ``--backlog_wait_time`` …); only ``-a``/``-A``/``-w`` lines are rules.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

NO_RULES = "No rules"
_RULE_PREFIXES = ("-a ", "-A ", "-w ", "-a\t", "-w\t")


class AuditFormatError(ValueError):
    """The output does not have the documented shape."""


def parse_status(text: str) -> Dict[str, Any]:
    """enabled, immutable, pid, failure, lost, backlog_limit (as integers; missing ones None)."""
    values: Dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            values[parts[0]] = parts[1]
    if "enabled" not in values or "pid" not in values:
        raise AuditFormatError(f"no 'enabled' and 'pid' lines: {text.strip()[:80]!r}")

    def number(key: str) -> Optional[int]:
        try:
            return int(values[key]) if key in values else None
        except ValueError:
            raise AuditFormatError(f"{key} is not a number: {values[key][:30]!r}") from None

    enabled = number("enabled")
    if enabled not in (0, 1, 2):
        raise AuditFormatError(f"enabled is {enabled}, expected 0, 1 or 2")
    return {
        "enabled": enabled in (1, 2),
        "immutable": enabled == 2,
        "pid": number("pid"),
        "failure_mode": number("failure"),
        "lost": number("lost"),
        "backlog_limit": number("backlog_limit"),
    }


def parse_rules_list(text: str) -> List[str]:
    """Loaded rules from ``auditctl -l``: ``No rules`` gives an empty list."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines == [NO_RULES]:
        return []
    rules = [line for line in lines if line.startswith(("-a ", "-w ", "-A "))]
    if len(rules) != len(lines):
        odd = next(line for line in lines if line not in rules)
        raise AuditFormatError(f"not a rule auditctl -l prints: {odd[:80]!r}")
    return rules


def rules_in_file(text: str) -> List[str]:
    """The rules of an audit rules file, without comments and control lines."""
    rules = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(_RULE_PREFIXES) or stripped in ("-a", "-w"):
            rules.append(stripped)
    return rules


def immutable_in_file(text: str) -> bool:
    """Whether the file ends the rule set with ``-e 2`` (locked until reboot)."""
    return any(line.split()[:2] == ["-e", "2"] for line in text.splitlines() if line.strip())
