"""Ingest: the agents' reports and heartbeats from the HTTP request to the ledger.

``endpoints`` serves the two frequent requests beside the web framework, reading each body with
``request_body``; ``signature_thread`` checks signatures off the event loop; ``receive`` refuses
replays and prepares rows; ``group_commit`` stores several requests in one transaction and
``loop_handoff`` hands the answers back to the loop; ``parsed_cache`` keeps what was parsed for
the evaluator; ``heartbeat_store`` writes heartbeats; ``ledger`` chains each node's reports and
``ledger_check`` verifies the chains (``tillsyn-central verify``).
"""
