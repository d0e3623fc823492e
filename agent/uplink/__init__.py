"""Uplink: everything the agent says to the centre.

``pace`` decides when deliveries and heartbeats go (with ``backoff`` after a failure);
``network_thread`` runs one network job at a time off the daemon's loop; ``deliver_reports`` sends
spooled reports in order and removes only what the centre acknowledged; ``heartbeats`` builds the
small signed liveness messages; ``signed_http`` signs each request and sends it over one reused
HTTPS session with a pinned CA.
"""
