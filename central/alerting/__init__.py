"""Alerting on-call staff: incidents, routing, a durable outbox and its channels (M12)."""
