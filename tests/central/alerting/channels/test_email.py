"""Email through a real SMTP server (aiosmtpd on loopback) with STARTTLS and AUTH."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.alerting.channels import ChannelError, build_sender
from central.alerting.channels.email import body, message
from central.alerting.settings import EmailChannel
from tests.central.alerting.channels.helpers import (
    email_channel,
    free_port,
    make_pki,
    resolved,
    sample_incident,
    smtp_server,
)


def test_trigger_and_resolve_arrive_over_starttls_in_one_thread(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    incident = sample_incident()
    with smtp_server(pki) as box:
        sender = build_sender("mail", email_channel(tmp_path, box.port, pki))
        sender.send("trigger", incident)
        sender.send("repeat", incident)
        sender.send("resolve", resolved(incident))
    assert box.tls == [True, True, True]
    assert box.envelopes[0].rcpt_tos == ["oncall@hosting.example", "soc@hosting.example"]
    assert box.envelopes[0].mail_from == "tillsyn@centre.example"
    trigger, repeat, resolve = box.messages
    assert (
        trigger["Subject"]
        == "[Tillsyn] FAILING high M01 web1: UPS ups1@localhost:3493 is on battery (OB DISCHRG), 29 min runtime left"
    )
    assert (
        repeat["Subject"]
        == "[Tillsyn] REMINDER high M01 web1: UPS ups1@localhost:3493 is on battery (OB DISCHRG), 29 min runtime left"
    )
    assert (
        resolve["Subject"]
        == "[Tillsyn] RESOLVED high M01 web1: UPS ups1@localhost:3493 is on battery (OB DISCHRG), 29 min runtime left"
    )
    root = trigger["Message-ID"]
    assert root.startswith("<tillsyn.42.") and root.endswith("@centre.example>")
    for later in (repeat, resolve):
        assert later["In-Reply-To"] == root and later["References"] == root
        assert later["Message-ID"] != root
    assert len({repeat["Message-ID"], resolve["Message-ID"]}) == 2
    assert trigger["Auto-Submitted"] == "auto-generated"
    text = trigger.get_content()
    lines = text.splitlines()
    assert "Node:         web1 (agent a1b2c3, tenant acme, group web)" in lines
    assert "Rule:         Every UPS runs on line power (ups-on-line, controls M01)" in lines
    assert "What:         UPS ups1@localhost:3493 is on battery (OB DISCHRG), 29 min runtime left" in lines
    assert "Severity:     high" in lines
    assert "Since:        2024-05-01 12:00:05 UTC" in lines
    assert "Link:         https://centre.example/nodes/a1b2c3" in lines
    assert not any(line.startswith("Observed:") for line in lines)  # the sentence says it, in words
    assert '{"' not in text and '"observed"' not in text
    assert any(line.startswith("What to do:") for line in lines)
    assert "Resolved:     2024-05-01 12:30:00 UTC" in resolve.get_content().splitlines()


def test_the_trigger_message_id_is_stable_so_a_resend_threads_too() -> None:
    import datetime as dt

    now = dt.datetime.now(dt.timezone.utc)
    first = message("trigger", sample_incident(), sender="tillsyn@c.example", to=("a@b",), now=now)
    again = message("trigger", sample_incident(), sender="tillsyn@c.example", to=("a@b",), now=now)
    other = message(
        "trigger", sample_incident(dedup_key="tillsyn/zz/other"), sender="tillsyn@c.example", to=("a@b",), now=now
    )
    assert first["Message-ID"] == again["Message-ID"] != other["Message-ID"]


def test_an_incident_without_a_sentence_shows_its_facts_in_words_not_json() -> None:
    text = body("trigger", sample_incident(message=None, observed={"ups": "ups1", "on_battery": True, "note": None}))
    lines = text.splitlines()
    assert "What:         Every UPS runs on line power" in lines
    assert "Observed:     ups ups1, on_battery yes" in lines
    assert not any(mark in text for mark in ('{"', '"ups"', "null", "true"))


def test_silent_node_mail_says_what_to_check() -> None:
    incident = sample_incident(
        kind="silent",
        rule_id="silent",
        controls=[],
        observed=None,
        title="Node stopped sending heartbeats",
        message="no heartbeat since 2024-05-01 11:57:05 UTC",
        severity="critical",
    )
    text = body("trigger", incident)
    assert text.startswith("SILENT critical web1: no heartbeat since 2024-05-01 11:57:05 UTC\n")
    assert "systemctl status tillsyn-agent" in text.replace("\n", " ")
    assert "Observed:" not in text


def test_server_without_starttls_is_refused_not_sent_in_plain_text(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    with smtp_server(None) as box:
        sender = build_sender("mail", email_channel(tmp_path, box.port, pki))
        with pytest.raises(ChannelError, match="does not offer STARTTLS") as err:
            sender.send("trigger", sample_incident())
    assert box.messages == []
    assert err.value.retry is False


def test_plain_relay_on_loopback_when_asked(tmp_path: Path) -> None:
    with smtp_server(None) as box:
        channel = EmailChannel(smtp_port=box.port, starttls=False, to=["oncall@hosting.example"])
        build_sender("mail", channel).send("trigger", sample_incident())
    assert [m["Subject"] for m in box.messages] == [
        "[Tillsyn] FAILING high M01 web1: UPS ups1@localhost:3493 is on battery (OB DISCHRG), 29 min runtime left"
    ]


def test_password_not_sent_in_plain_text_to_a_remote_host(tmp_path: Path) -> None:
    channel = email_channel(tmp_path, 25, None, starttls=False, smtp_host="smtp.hosting.example")
    with pytest.raises(ChannelError, match="plain text"):
        build_sender("mail", channel)


def test_wrong_password(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    with smtp_server(pki) as box:
        sender = build_sender("mail", email_channel(tmp_path, box.port, pki, password="wrong"))
        with pytest.raises(ChannelError, match="refused the login of 'alerts': 535") as err:
            sender.send("trigger", sample_incident())
    assert box.messages == []
    assert err.value.retry is False
    assert "wrong" not in str(err.value)


def test_untrusted_certificate(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    other = make_pki(tmp_path / "other")
    with smtp_server(pki) as box:
        sender = build_sender("mail", email_channel(tmp_path, box.port, other))
        with pytest.raises(ChannelError, match="not trusted") as err:
            sender.send("trigger", sample_incident())
    assert box.messages == [] and err.value.retry is False


def test_server_down_is_retried(tmp_path: Path) -> None:
    sender = build_sender("mail", email_channel(tmp_path, free_port(), None))
    with pytest.raises(ChannelError, match=r"SMTP server 127\.0\.0\.1") as err:
        sender.send("trigger", sample_incident())
    assert err.value.retry is True


def test_missing_password_file_fails_at_build(tmp_path: Path) -> None:
    channel = email_channel(tmp_path, 25, None, password_file=tmp_path / "nope")
    with pytest.raises(ChannelError, match=r"password_file .*nope: no such file"):
        build_sender("mail", channel)
