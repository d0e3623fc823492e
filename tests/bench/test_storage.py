"""The storage benchmark on a small run: one node, a few simulated hours, on SQLite."""

from __future__ import annotations

from argparse import Namespace

from bench.load_nodes import capture_template
from bench.storage import BIN, ROOT, run, section


def test_one_node_a_few_hours_stores_its_reports_split_and_verifies() -> None:
    template = capture_template(BIN / "tillsyn-agent", ROOT / "config" / "agent.yaml")
    args = Namespace(db="sqlite", nodes=1, days=0.15, deviating=1.0, write=False)
    result = run("SQLite", None, args, template)
    assert result.verify_problems == 0
    assert result.reports > 0 and result.heartbeats > 0
    assert result.rows["incidents"] > 0  # the telnet server, at least, opened one
    # the changing time record stays in the skeletons (against the node's dictionary), not a new piece
    # in every report: the pieces are the records of the first reports, the telnet deviation's ports
    # record and a few dictionaries (a skeleton past REMAKE bytes makes another, as the rounds' mix of
    # collectors varies with the random report ids' compression: growth of one dictionary or none)
    assert result.rows["pieces"] < result.reports / 2, (result.rows["pieces"], result.reports)
    # every body a skeleton naming its dictionary by 8 bytes of its SHA-256 (tsk3), none whole (tsk2)
    assert (result.rows["tsk3 bodies"], result.rows["tsk2 bodies"]) == (result.reports, 0)
    assert 0 < result.per_node_day < result.report_bytes / (result.nodes * result.days)  # less than as signed
    text = section(result, args, 400)
    assert text.startswith("### SQLite") and "| **total** |" in text and "| 50,000 |" in text
