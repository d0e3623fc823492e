"""What the downgrades of the body formats share (0015, 0017): each stored body of a format rewritten
as the format before it, in batches of ids."""

from __future__ import annotations

import logging
from typing import Callable

import sqlalchemy as sa
from sqlalchemy import Connection

from central.db import report_bodies

_BATCH = 500
log = logging.getLogger(__name__)

_reports = sa.table(
    "reports", sa.column("id", sa.BigInteger), sa.column("agent_id", sa.String), sa.column("body", sa.LargeBinary)
)

Convert = Callable[[report_bodies.Bodies, str, bytes], bytes]
"""``(reader, agent_id, stored) -> the body in the earlier format``, raising ``UnreadableBody``."""


def rewrite(conn: Connection, magic: bytes, convert: Convert) -> None:
    """Store each body that starts with ``magic`` as ``convert`` makes it, each read through its
    pieces before any is changed; a body that cannot be read is left as it is (it is unreadable to
    either version, and ``verify`` names it), with a warning."""
    bodies = report_bodies.Bodies(conn)
    after = -1
    while True:
        rows = conn.execute(
            sa.select(_reports.c.id, _reports.c.agent_id, _reports.c.body)
            .where(_reports.c.id > after)
            .order_by(_reports.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        after = rows[-1].id
        for row in rows:
            stored = bytes(row.body)
            if not stored.startswith(magic):
                continue
            try:
                old = convert(bodies, row.agent_id, stored)
            except report_bodies.UnreadableBody as err:
                log.warning("report %s of node %s left as it is: %s", row.id, row.agent_id, err)
                continue
            conn.execute(sa.update(_reports).where(_reports.c.id == row.id).values(body=old))
