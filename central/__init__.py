"""The Tillsyn centre: receives reports, evaluates the policy, alerts, and keeps evidence.

Grouped by pipeline stage (docs/architecture.md).  Nothing here is imported by the agent.
"""
