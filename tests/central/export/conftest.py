"""Fixtures of the export tests."""

from __future__ import annotations

from typing import Any, Dict

import pytest
from fastapi.testclient import TestClient

from central.runtime.service import Centre
from tests.central.export.history_fleet import make_fleet


@pytest.fixture
def fleet(client: TestClient, centre: Centre) -> Dict[str, Any]:
    """acme: a node with a hostile name whose telnet rule went stale -> failing -> passing; a quiet
    acme node; globex: a node that must never appear in acme's export."""
    return make_fleet(client, centre)
