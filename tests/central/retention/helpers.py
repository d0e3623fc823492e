"""Helpers shared by the retention tests (tests import helpers, never other test modules)."""

from __future__ import annotations

from central.config import Retention

SETTINGS = Retention(reports_days=400, findings_history_days=400, audit_days=400)
