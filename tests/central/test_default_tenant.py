"""A node enrolled without a tenant is in the default tenant (central.yaml), like any other node."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from central.api.app import create_app
from central.clock import utcnow
from central.config import ConfigError, from_mapping
from central.db.engine import read_tx, write_tx
from central.db.schema import agents, audit_log
from central.export.build import build
from central.export.model import Request
from central.runtime.service import Centre, open_centre
from tests.central.conftest import Node, make_config, new_token


def _tenants(centre: Centre) -> dict[str, str]:
    with read_tx(centre.engine) as conn:
        return dict(conn.execute(select(agents.c.hostname, agents.c.tenant)).tuples().all())


def test_enrolled_without_a_tenant_the_node_is_in_the_default_one(
    client: TestClient, centre: Centre, tmp_path: Path, database_url: str
) -> None:
    plain = Node(client, hostname="plain.example.net")
    plain.enrol(new_token(centre))
    acme = Node(client, hostname="acme.example.net")
    acme.enrol(new_token(centre, tenant="acme"))
    assert _tenants(centre) == {"plain.example.net": "default", "acme.example.net": "acme"}
    with read_tx(centre.engine) as conn:  # an export of the default tenant has it, and only it
        hosts = [n["hostname"] for n in build(conn, Request(utcnow(), tenant="default"), centre.policy.policy)["nodes"]]
    assert hosts == ["plain.example.net"]

    # a node enrolled before the setting existed joins the configured tenant when the centre starts
    with write_tx(centre.engine) as conn:
        conn.execute(update(agents).where(agents.c.hostname == "plain.example.net").values(tenant=None))
    again = open_centre(make_config(tmp_path, database_url, default_tenant="customers-without-contract"))
    try:
        assert _tenants(again)["plain.example.net"] == "customers-without-contract"
        with read_tx(again.engine) as conn:
            logged = conn.execute(select(audit_log.c.detail).where(audit_log.c.action == "agents.default_tenant"))
            assert [row.detail for row in logged] == [{"nodes": 1}]
        with TestClient(create_app(again, duties=False)) as other:
            late = Node(other, hostname="late.example.net")
            late.enrol(new_token(again))
        assert _tenants(again)["late.example.net"] == "customers-without-contract"
    finally:
        again.stop()


def test_a_default_tenant_that_is_no_tenant_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="default_tenant"):
        from_mapping({"default_tenant": "two words"}, "central.yaml", {})
