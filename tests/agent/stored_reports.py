"""The centre's stored reports of one agent as their signed bytes, printed as JSON lines:
``python -m tests.agent.stored_reports DB_FILE AGENT_ID``.

Run with the centre's interpreter (``tests.centre_process.CENTRAL_PYTHON``): a body is stored as a
skeleton and its pieces (central/db/report_bodies.py), joined with the centre's own code, which the
agent's tests on Debian 12's oldest libraries cannot import (no SQLAlchemy there)."""

from __future__ import annotations

import json
import sys

from sqlalchemy import create_engine, select

from central.db.report_bodies import Bodies
from central.db.schema import reports


def main(db_file: str, agent_id: str) -> None:
    engine = create_engine(f"sqlite:///file:{db_file}?mode=ro&uri=true")
    columns = (reports.c.seq, reports.c.report_id, reports.c.collected_at, reports.c.body)
    query = select(*columns).where(reports.c.agent_id == agent_id).order_by(reports.c.chain_index)
    try:
        with engine.connect() as conn:
            bodies = Bodies(conn)
            for seq, report_id, collected_at, stored in conn.execute(query):
                report = json.loads(bodies.raw(agent_id, stored))
                when = collected_at.isoformat()
                print(json.dumps({"seq": seq, "report_id": report_id, "collected_at": when, "report": report}))
    finally:
        engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
