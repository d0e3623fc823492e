"""An auditor reads the HTML or PDF export: past deviations and incidents show what was observed."""

from __future__ import annotations

from typing import Any, Dict

from sqlalchemy import update

from central.db.engine import write_tx
from central.db.schema import incidents
from central.export.html import to_html
from central.export.model import Request
from central.runtime.service import Centre
from tests.central.export.history_fleet import day, export


def test_html_shows_observed_values_of_past_deviations_and_incidents(centre: Centre, fleet: Dict[str, Any]) -> None:
    with write_tx(centre.engine) as conn:
        conn.execute(update(incidents).values(message="<b>inetd</b> listens on 0.0.0.0:23/tcp (telnet, plaintext)"))
    page = to_html(export(centre, Request(day(65), start=day(20), tenant="acme")))
    changes = page[page.index("<h2>Nodes</h2>") : page.index("<h2>Waivers in force</h2>")]
    # the telnet rule's change to failing on day 30 carries what was seen then (escaped)
    assert '&rarr; <span class="failing">failing</span>' in changes
    # and its sentence, as the node's finding said it then (escaped: a node's process name is its own)
    assert "<br>&lt;b&gt;inetd&lt;/b&gt; listens on 0.0.0.0:23/tcp (telnet, plaintext)\n<br>" in changes
    assert "observed:</span> <code>[{&#34;address&#34;: &#34;0.0.0.0&#34;" in changes
    assert "&#34;port&#34;: 23" in changes and "&lt;b&gt;inetd&lt;/b&gt;" in changes
    listed = page[page.index("<h2>Incidents</h2>") :]
    assert "<p>&lt;b&gt;inetd&lt;/b&gt; listens on 0.0.0.0:23/tcp (telnet, plaintext)</p>" in listed
    assert "Observed when it opened:</span> <code>[{&#34;address&#34;: &#34;0.0.0.0&#34;" in listed
