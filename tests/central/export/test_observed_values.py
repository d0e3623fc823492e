"""An auditor reads the HTML or PDF export: each status, past deviation and incident says in a
sentence what was seen, never the observed value as JSON (that stays in the JSON export)."""

from __future__ import annotations

from typing import Any, Dict

from sqlalchemy import update

from central.db.engine import write_tx
from central.db.schema import finding_changes, incidents
from central.export.html import to_html
from central.export.model import Request
from central.runtime.service import Centre
from tests.central.export.history_fleet import RULE, day, export

SENTENCE = "&lt;b&gt;inetd&lt;/b&gt; listens on 0.0.0.0:23/tcp (telnet, plaintext)"


def _tables(page: str) -> str:
    return page[page.index("<h2>Nodes</h2>") : page.index("<h2>Waivers in force</h2>")]


def test_html_says_what_was_seen_in_sentences_not_json(centre: Centre, fleet: Dict[str, Any]) -> None:
    with write_tx(centre.engine) as conn:
        conn.execute(update(incidents).values(message="<b>inetd</b> listens on 0.0.0.0:23/tcp (telnet, plaintext)"))
    page = to_html(export(centre, Request(day(65), start=day(20), tenant="acme")))
    changes = _tables(page)
    assert "<th>What was seen</th>" in changes and "<th>Observed</th>" not in changes
    assert "room=&lt;img src=x onerror=alert(1)&gt;" in changes  # labels as key=value, escaped
    # the telnet rule's change to failing on day 30 carries its sentence as the node's finding said
    # it then (escaped: a node's process name is its own)
    assert f'&rarr; <span class="failing">failing</span>\n<br>{SENTENCE}<br>' in changes
    # no JSON for any rule, status, change or the node's labels (escaped quotes would be &#34;)
    assert "&#34;" not in changes and "<code>[" not in changes and "null" not in changes
    listed = page[page.index("<h2>Incidents</h2>") :]
    assert f"<p>{SENTENCE}</p>" in listed
    assert "&#34;" not in listed and "Observed when it opened" not in listed
    # the status at the end of the period also leads with its sentence
    point = _tables(to_html(export(centre, Request(day(45), tenant="acme"))))
    assert f"<td>{SENTENCE}</td>" in point and "&#34;" not in point


def test_a_change_from_before_sentences_shows_its_facts_in_words(centre: Centre, fleet: Dict[str, Any]) -> None:
    with write_tx(centre.engine) as conn:  # as if recorded before migration 0014
        conn.execute(update(finding_changes).where(finding_changes.c.rule_id == RULE).values(message=None))
    page = _tables(to_html(export(centre, Request(day(45), tenant="acme"))))
    words = "observed: protocol tcp, address 0.0.0.0, port 23, services telnet, process.name &lt;b&gt;inetd&lt;/b&gt;"
    assert f"<td>{words}</td>" in page
    assert "&#34;" not in page and "null" not in page
