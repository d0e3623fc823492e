# The template's table rows read better whole than wrapped:
# ruff: noqa: E501
"""An export as one printable, self-contained HTML document (inline CSS, no script, nothing fetched).

Every value is escaped by Jinja2's autoescape: hostnames, labels and sentences come from nodes
and are untrusted.  What was seen is each finding's sentence; the observed value as JSON stays
in the JSON export, for programs and for verification.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping

from jinja2 import Environment, StrictUndefined

from central.judging.own.notification import minutes
from evidence.sentences import words

# Kept in Python rather than a .html file so it ships with the package as code does.
TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Tillsyn audit export {{ scope_text }}</title>
<style>
body { font: 10pt/1.4 "DejaVu Sans", Helvetica, Arial, sans-serif; color: #111; margin: 2em; }
h1 { font-size: 18pt; margin: 0 0 .2em; } h2 { font-size: 13pt; margin-top: 1.6em; border-bottom: 1px solid #999; }
h3 { font-size: 11pt; margin: 1.2em 0 .3em; }
table { border-collapse: collapse; width: 100%; margin: .4em 0 1em; }
th, td { border: 1px solid #bbb; padding: 2px 5px; text-align: left; vertical-align: top; }
th { background: #eee; } td.num { text-align: right; }
code, .hash { font-family: "DejaVu Sans Mono", monospace; font-size: 8pt; word-break: break-all; }
.passing { color: #145a14; } .failing { color: #a00; font-weight: bold; } .stale, .unknown { color: #8a5a00; }
.accepted { color: #555; font-style: italic; } .overdue { color: #a00; font-weight: bold; } .meta { color: #444; }
section.node, section.control { page-break-inside: avoid; }
@media print { body { margin: 0; } h2 { page-break-after: avoid; } }
</style>
</head>
<body>
<h1>Tillsyn audit export</h1>
<p class="meta">{{ scope_text }} &middot; tenant: {{ e.scope.tenant or "all tenants" }} &middot;
generated {{ e.generated_at }} &middot; format <code>{{ e.format }}</code> &middot; {{ e.nodes|length }} node(s)</p>
<p class="meta">Status per rule is the last recorded change at or before the time shown. Ledger hashes let each cited
report be checked: <code>tillsyn-central export verify FILE.json</code> (see docs/audit-export.md).</p>

<h2>Summary per control</h2>
<table>
<tr><th>Control</th><th>Measure</th><th>ISO/IEC 27001</th><th>GDPR</th>
{% for s in states %}<th>{{ s }}</th>{% endfor %}</tr>
{% for c in e.controls %}<tr><td>{{ c.id }}</td><td>{{ c.title }}</td><td>{{ c.iso27001|join(", ") }}</td>
<td>{{ c.gdpr|join(", ") }}</td>{% for s in states %}<td class="num">{{ c.counts[s] }}</td>{% endfor %}</tr>
{% endfor %}
</table>

{% for c in e.controls %}
<section class="control">
<h2>{{ c.id }} {{ c.title }}</h2>
<p>{{ c.summary }}.</p>
{% if c.nodes %}
<table><tr><th>Node</th><th>Status</th><th>Rules</th></tr>
{% for n in c.nodes %}<tr><td>{{ n.hostname }}<br><code>{{ n.agent_id }}</code></td>
<td class="{{ n.status }}">{{ n.status }}</td>
<td>{% for rule, status in n.rules.items() %}{{ rule }}: <span class="{{ status }}">{{ status }}</span><br>{% endfor %}</td></tr>
{% endfor %}</table>
{% else %}<p class="meta">No node rule serves this control in this export.</p>{% endif %}
</section>
{% endfor %}

<h2>Nodes</h2>
{% for n in e.nodes %}
<section class="node">
<h3>{{ n.hostname }}</h3>
<table>
<tr><th>Agent id</th><td><code>{{ n.id }}</code></td><th>Tenant / group</th><td>{{ n.tenant or "-" }} / {{ n.group or "-" }}</td></tr>
<tr><th>Labels</th><td>{% for k, v in n.labels.items() %}{{ k }}={{ v }}{{ ", " if not loop.last }}{% else %}-{% endfor %}</td><th>Enrolled</th><td>{{ n.enrolled_at }}{% if n.revoked_at %}, revoked {{ n.revoked_at }}{% endif %}</td></tr>
<tr><th>Key fingerprint</th><td colspan="3" class="hash">{{ n.key_fingerprint }}</td></tr>
<tr><th>Ledger at cut-off</th><td colspan="3" class="hash">{% if n.ledger.pruned %}deleted by retention{% else %}
{{ n.ledger.length }} entries, head {{ n.ledger.head }}{% endif %}</td></tr>
</table>
<table>
<tr><th>Rule</th><th>Controls</th><th>Status</th><th>Since</th><th>What was seen</th><th>Accepted by</th>{% if ranged %}<th>At start</th><th>Changes in period</th>{% endif %}</tr>
{% for r in n.rules %}<tr><td>{{ r.rule_id }}</td><td>{{ r.controls|join(" ") }}</td>
<td class="{{ r.status }}">{{ r.status }}</td><td>{{ r.since or "" }}</td><td>{{ seen(r) }}</td>
<td>{{ r.accepted_by|join(" ") }}</td>
{% if ranged %}<td class="{{ r.status_at_start }}">{{ r.status_at_start }}</td>
<td>{% for c in r.changes %}{{ c.at }}: {{ c.from or "-" }} &rarr; <span class="{{ c.to }}">{{ c.to }}</span>{% if seen(c) %}
<br>{{ seen(c) }}{% endif %}<br>{% endfor %}</td>{% endif %}</tr>
{% endfor %}
</table>
{% if n.reports %}
<table><tr><th>Report</th><th>Seq</th><th>Chain index</th><th>Entry hash</th><th>Body SHA-256</th><th>Received</th></tr>
{% for r in n.reports %}<tr><td><code>{{ r.report_id }}</code></td>{% if r.in_ledger %}<td class="num">{{ r.seq }}</td>
<td class="num">{{ r.chain_index }}</td><td class="hash">{{ r.entry_hash }}</td><td class="hash">{{ r.body_sha256 }}</td>
<td>{{ r.received_at }}</td>{% else %}<td colspan="5">deleted by retention</td>{% endif %}</tr>
{% endfor %}</table>
{% endif %}
</section>
{% endfor %}

<h2>Waivers in force</h2>
{% if e.waivers %}<table><tr><th>Id</th><th>Rule</th><th>Scope</th><th>Justification</th><th>Approver</th><th>From</th><th>Until</th><th>Revoked</th></tr>
{% for w in e.waivers %}<tr><td><code>{{ w.id }}</code></td><td>{{ w.rule_id }}</td><td>{{ w.scope|words }}</td><td>{{ w.justification }}</td>
<td>{{ w.approver }}</td><td>{{ w.created_at }}</td><td>{{ w.expires_at }}</td><td>{{ w.revoked_at or "" }}</td></tr>
{% endfor %}</table>{% else %}<p class="meta">None.</p>{% endif %}

<h2>Maintenance windows</h2>
{% if e.maintenance_windows %}<table><tr><th>Id</th><th>Scope</th><th>Start</th><th>End</th><th>Allows</th><th>Reason</th><th>By</th><th>Cancelled</th></tr>
{% for w in e.maintenance_windows %}<tr><td><code>{{ w.id }}</code></td><td>{{ w.scope|words }}</td><td>{{ w.starts_at }}</td><td>{{ w.ends_at }}</td>
<td>{{ w.allows|join(" ") }}</td><td>{{ w.reason }}</td><td>{{ w.created_by }}</td><td>{{ w.cancelled_at or "" }}</td></tr>
{% endfor %}</table>{% else %}<p class="meta">None.</p>{% endif %}

<h2>Incidents</h2>
{% for i in e.incidents %}
<h3>#{{ i.id }} {{ i.title }}</h3>
<p class="meta">{{ hosts.get(i.agent_id, i.agent_id) }} &middot; {{ i.rule_id }} &middot; {{ i.controls|join(" ") }} &middot;
{{ i.severity }} &middot; {{ i.status }}{% if i.acknowledged_by %} &middot; acknowledged by {{ i.acknowledged_by }}{% endif %}</p>
{% if seen(i) %}<p>{{ seen(i) }}</p>{% endif %}
<p>Detected {{ i.opened_at }};
{% if i.notified_after_s is not none %}first notified {{ i.first_notified_at }}, {{ i.notified_after_s|duration }} after detection{% else %}never notified{% endif %};
{% if i.acknowledged_after_s is not none %}acknowledged {{ i.acknowledged_after_s|duration }} after detection{% else %}not acknowledged{% endif %}.</p>
<table><tr><th>Time</th><th>Event</th><th>Channel</th><th>Actor</th><th>Detail</th></tr>
{% for t in i.timeline %}<tr><td>{{ t.at }}</td><td>{{ t.kind }}</td><td>{{ t.channel or "" }}</td><td>{{ t.actor or "" }}</td><td>{{ t.detail or "" }}</td></tr>
{% endfor %}</table>
{% else %}<p class="meta">None.</p>{% endfor %}

<h2>Erasure requests (M08)</h2>
<p class="meta">Requests to erase personal data (GDPR Art. 17) {{ "recorded by then" if not ranged else "recorded, open or carried out in the period" }}, as of the end of the export.</p>
{% if e.erasures %}<table><tr><th>Node</th><th>Request</th><th>Requested</th><th>Due</th><th>Recorded by</th><th>Carried out</th><th>Erased</th><th>Status</th></tr>
{% for r in e.erasures %}<tr><td>{{ r.hostname }}<br><code>{{ r.agent_id }}</code></td><td>{{ r.reference }}</td><td>{{ r.requested_at }}</td><td>{{ r.due_at }}</td>
<td>{{ r.recorded_by }} on {{ r.recorded_at }}</td><td>{% if r.erased_at %}{{ r.erased_at }} by {{ r.erased_by }}{% else %}not yet{% endif %}</td>
<td>{% if r.erased_at %}{{ r.erased_values }} value(s) erased, {{ r.reports }} report(s) changed{% endif %}</td><td class="{{ r.status }}">{{ r.message }}</td></tr>
{% endfor %}</table>{% else %}<p class="meta">None.</p>{% endif %}

<h2>Retention rounds (M08)</h2>
<p class="meta">Rounds of the centre's retention that deleted data {{ "in the period" if ranged else "in the day before the moment" }}, by UTC day, from the audit trail{% if e.scope.tenant %}; a round deletes for every tenant, so what it deleted is counted only in an export of all tenants{% endif %}.</p>
{% if e.centre.retention_runs %}<table><tr><th>Day</th><th>What retention did</th></tr>
{% for d in e.centre.retention_runs %}<tr><td>{{ d.day }}</td><td>{{ d.message }}</td></tr>
{% endfor %}</table>{% else %}<p class="meta">None recorded.</p>{% endif %}
</body>
</html>
"""


def seen(entry: Mapping[str, Any]) -> str:
    """What a status, change or incident saw, as a person reads it: its sentence, or for one
    recorded before sentences were kept, its observed facts in words (never JSON; that is in
    the JSON export)."""
    if entry.get("message"):
        return str(entry["message"])
    if entry.get("observed") is None:
        return ""
    return "observed: " + words(entry["observed"])


def to_html(export: Dict[str, Any]) -> str:
    env = Environment(autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True)
    env.filters["words"] = words
    env.filters["duration"] = minutes
    scope = export["scope"]
    scope_text = f"as of {scope['at']}" if scope["mode"] == "point" else f"from {scope['from']} to {scope['to']}"
    return env.from_string(TEMPLATE).render(
        e=export,
        seen=seen,
        scope_text=scope_text,
        ranged=scope["mode"] == "range",
        states=("passing", "failing", "accepted", "stale", "unknown", "not_evaluated"),
        hosts={n["id"]: n["hostname"] for n in export["nodes"]},
    )
