"""Alembic environment: runs on the connection that central.db.migrate hands it."""

from __future__ import annotations

from alembic import context

import central.retention.sweep  # noqa: F401  its table is on the shared metadata
from central.db.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `tillsyn-central db upgrade`, which passes a connection")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
