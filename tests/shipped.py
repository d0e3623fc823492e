"""The shipped policy's size, for tests that expect one finding per rule (rules are added often)."""

from __future__ import annotations

from functools import lru_cache

from evidence.policy import SHIPPED_POLICY, parse_policy


@lru_cache(maxsize=1)
def shipped_rule_count() -> int:
    return len(parse_policy(SHIPPED_POLICY.read_text(), str(SHIPPED_POLICY)).rules)
