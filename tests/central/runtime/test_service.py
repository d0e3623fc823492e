"""One centre process assembled (central/runtime/service.py): its stages hand on at once.  Ingest
calls ``on_reports_stored``, which wakes the evaluator; a verdict turning failing calls
``on_verdicts_changed``, which wakes the duties, whose round opens the incident.  With an hour
between rounds, only these hand-overs can open the incident within seconds."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List

from fastapi.testclient import TestClient
from sqlalchemy import select

from central.api.app import create_app
from central.db.engine import read_tx
from central.db.schema import incidents
from central.runtime.service import open_centre
from tests.central.alerting.two_webhooks import deviate
from tests.central.conftest import Node, make_config, new_token


def test_a_stored_deviation_opens_its_incident_without_waiting_for_a_round(tmp_path: Path, database_url: str) -> None:
    centre = open_centre(make_config(tmp_path, database_url, duty_interval_s=3600))
    try:
        with TestClient(create_app(centre, duties=False)) as client:
            node = Node(client)
            node.enrol(new_token(centre))
            centre.start_duties()
            time.sleep(1.0)  # the evaluator's first look at the (empty) queue; then it waits an hour
            assert centre.duties is not None and centre.duties.last == {}  # no duty round yet
            deviate(node)
            deadline = time.monotonic() + 30
            opened: List[str] = []
            while not opened and time.monotonic() < deadline:
                time.sleep(0.2)
                with read_tx(centre.engine) as conn:
                    query = select(incidents.c.rule_id).where(incidents.c.agent_id == node.agent_id)
                    opened = list(conn.execute(query).scalars())
            assert opened == ["ports-no-plaintext-remote"]
            # the round that opened it was woken, not due (it says so once the rest of it is done)
            while centre.duties.last == {} and time.monotonic() < deadline:
                time.sleep(0.05)
            assert centre.duties.last != {}
    finally:
        centre.stop()
