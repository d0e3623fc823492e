"""The duty-round benchmark runs the centre's real round on a bulk-made fleet: a small one here."""

from __future__ import annotations

from bench.duty_round import render, run


def test_a_small_fleet_opens_its_incidents_then_rounds_find_nothing_new() -> None:
    result = run("SQLite", None, count=40, rounds=2)
    assert result["open"] > 0  # the first round opened an incident for each failing finding (and silent node)
    assert result["queued"] == result["open"]  # and queued its notification to the one channel
    assert len(result["steady"]) == 2
    assert all(r["cpu_ms"] > 0 and r["wall_ms"] > 0 for r in [result["first"], *result["steady"]])
    text = render([result], 40, "cmd", 0.0)
    assert "| SQLite | " in text and "Command: `cmd`" in text
