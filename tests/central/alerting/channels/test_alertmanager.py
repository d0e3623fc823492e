"""Alerts into a real Prometheus Alertmanager (Debian's prometheus-alertmanager) on loopback."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest
import requests

from central.alerting.channels import ChannelError, build_sender
from central.alerting.channels.alertmanager import RESENDS_ALIVE, alert, label_name
from central.alerting.settings import AlertmanagerChannel
from tests.central.alerting.channels.helpers import alertmanager, free_port, resolved, sample_incident


def _alerts(url: str) -> List[Dict[str, Any]]:
    response = requests.get(f"{url}/api/v2/alerts", timeout=5)
    response.raise_for_status()
    return list(response.json())


def _parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_trigger_fires_and_resolve_clears(tmp_path: Path) -> None:
    incident = sample_incident(opened_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5))
    other = sample_incident(id=43, agent_id="d4e5f6", hostname="web2", dedup_key="tillsyn/d4e5f6/ups-on-line")
    with alertmanager(tmp_path) as url:
        sender = build_sender("am", AlertmanagerChannel(url=url + "/", resend_s=30))
        before = dt.datetime.now(dt.timezone.utc)
        sender.send("trigger", incident)
        sender.send("trigger", other)
        sender.send("repeat", incident)  # a re-send of the same alert: still one alert
        firing = _alerts(url)
        assert len(firing) == 2
        [mine] = [a for a in firing if a["labels"]["node"] == "web1"]
        assert mine["labels"] == {
            "alertname": "ups-on-line",
            "node": "web1",
            "agent_id": "a1b2c3",
            "severity": "high",
            "controls": "M01",
            "tenant": "acme",
            "group": "web",
            "source": "tillsyn",
            "label_dc": "sto1",
            "label_role_tier": "front",
        }
        assert (
            mine["annotations"]["summary"]
            == "high M01 web1: UPS ups1@localhost:3493 is on battery (OB DISCHRG), 29 min runtime left"
        )
        assert mine["annotations"]["observed"] == '{"ups": "ups1", "status": "OB DISCHRG", "charge_pct": 87}'
        assert (
            mine["annotations"]["description"]
            == "UPS ups1@localhost:3493 is on battery (OB DISCHRG), 29 min runtime left"
        )
        assert mine["annotations"]["incident_id"] == "42"
        assert mine["status"]["state"] == "active"
        assert mine["generatorURL"] == "https://centre.example/nodes/a1b2c3"
        assert abs(_parse(mine["startsAt"]) - incident["opened_at"]) < dt.timedelta(seconds=1)
        ends = _parse(mine["endsAt"]) - before  # kept alive for a few resend intervals, no longer
        assert dt.timedelta(seconds=30 * RESENDS_ALIVE - 5) < ends < dt.timedelta(seconds=30 * RESENDS_ALIVE + 5)

        sender.send("resolve", resolved(incident) | {"resolved_at": dt.datetime.now(dt.timezone.utc)})
        time.sleep(0.05)
        assert [a["labels"]["node"] for a in _alerts(url)] == ["web2"]  # resolved alerts leave the active list


def test_alertmanager_refuses_a_bad_alert(tmp_path: Path) -> None:
    with alertmanager(tmp_path) as url:
        sender = build_sender("am", AlertmanagerChannel(url=url))
        broken = sample_incident(
            opened_at=dt.datetime(2024, 5, 2, tzinfo=dt.timezone.utc),
            resolved_at=dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc),
        )
        with pytest.raises(ChannelError, match="answered 400") as err:
            sender.send("resolve", broken)  # endsAt before startsAt
    assert err.value.retry is False


def test_alertmanager_down_is_retried() -> None:
    sender = build_sender("am", AlertmanagerChannel(url=f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(ChannelError, match="cannot connect") as err:
        sender.send("trigger", sample_incident())
    assert err.value.retry is True


def test_label_names_are_valid_prometheus_names() -> None:
    assert label_name("k8s.io/role-name") == "label_k8s_io_role_name"
    incident = sample_incident(tenant=None, group="", labels={"x": ""})
    payload = alert("trigger", incident, dt.datetime.now(dt.timezone.utc), 60)
    assert {"tenant", "group", "label_x"}.isdisjoint(payload["labels"])  # empty labels are no labels
