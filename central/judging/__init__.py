"""Judging: stored reports evaluated against the policy into findings and node states.

``evaluation`` works through the queue ingest leaves, ``findings`` keeps each rule's verdict per
node, ``node_states`` derives a node's state, ``policy_store`` holds and reloads the policy.
"""
