"""packaging/grafana/tillsyn.json: every metric its queries use is one a centre exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator, Set

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from central.config import from_mapping
from central.runtime.service import open_centre

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "packaging" / "grafana" / "tillsyn.json"
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}


def _queries(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "query", "definition") and isinstance(value, str):
                yield value
            else:
                yield from _queries(value)
    elif isinstance(node, list):
        for item in node:
            yield from _queries(item)


def exported(tmp_path: Path) -> Set[str]:
    """The series names a real centre's /metrics text has (families and their suffixed samples)."""
    mail = {"type": "email", "to": ["oncall@hosting.example"]}
    config = from_mapping({"state_dir": str(tmp_path), "alerting": {"channels": {"mail": mail}}}, "test", {})
    centre = open_centre(config)
    try:
        text = generate_latest(centre.metrics.registry).decode()
    finally:
        centre.stop()
    names = {"up"}
    for family in text_string_to_metric_families(text):
        # a counter or histogram has no series of its bare name, only the suffixed ones
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def test_every_query_names_a_metric_the_centre_exports(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = list(_queries(dashboard))
    assert len(queries) >= 20
    used = {name for query in queries for name in re.findall(r"\b(tillsyn_[a-z0-9_]+|up)\b", query)}
    names = exported(tmp_path)
    assert sorted(used - names) == []
    # and the pipeline's own metrics are all on it
    watched = r"tillsyn_(outbox|channel|notifications|duty|health|incidents|findings|agents)"
    pipeline = {n for n in names if re.match(watched, n)}
    shown = {n for n in pipeline if not n.endswith("_created")}
    assert sorted(shown - used) == []
