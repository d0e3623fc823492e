"""The Tillsyn centre: receives reports, evaluates the policy, alerts, and keeps evidence.

Not built yet: see the project's open issues.  Nothing here is imported by the agent.
"""
