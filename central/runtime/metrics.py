"""Prometheus metrics of one centre process (a registry per app, no globals).

Counters, the duty round's histogram and its last success are this process's own (with several
replicas, sum or max them across instances); the gauges of nodes, backlog, outbox, channels,
incidents, findings and agent versions are read from the shared database at scrape time
(:mod:`central.runtime.pipeline`), so every replica reports the same values.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterable, List, Optional, Tuple

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from central.runtime.health import CHECKS, Problem
from central.runtime.pipeline import Pipeline

KINDS = ("trigger", "repeat", "resolve", "update")
SEVERITIES = ("info", "low", "medium", "high", "critical")


class _NodeStates(Collector):
    def __init__(self, counts: Callable[[], Dict[str, int]]) -> None:
        self.counts = counts

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("tillsyn_nodes", "Enrolled nodes by state", labels=["state"])
        for state, count in sorted(self.counts().items()):
            family.add_metric([state], count)
        yield family


class _Backlog(Collector):
    def __init__(self, backlog: Callable[[], int]) -> None:
        self.backlog = backlog

    def collect(self) -> Iterable[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "tillsyn_evaluation_backlog",
            "Reports stored and acknowledged but not yet evaluated against the policy",
            value=self.backlog(),
        )


class _PipelineGauges(Collector):
    """The alerting pipeline read from the database, and the health checks judged on it."""

    def __init__(self, read: Callable[[], Tuple[Optional[Pipeline], List[Problem]]]) -> None:
        self.read = read

    def collect(self) -> Iterable[GaugeMetricFamily]:
        pipeline, problems = self.read()
        yield GaugeMetricFamily(
            "tillsyn_pipeline_read_ok",
            "1 when the outbox, incident and finding figures below could be read from the database, 0 when not",
            value=0 if pipeline is None else 1,
        )
        health = GaugeMetricFamily(
            "tillsyn_health_problem",
            "1 while a health check fails (the reason is in /healthz): duties_overdue, channel_failing, outbox_stuck",
            labels=["check"],
        )
        failing = {p.check for p in problems}
        for check in CHECKS:
            health.add_metric([check], 1 if check in failing else 0)
        yield health
        if pipeline is None:
            return
        yield from _channel_families(pipeline)
        open_incidents = GaugeMetricFamily(
            "tillsyn_incidents_open", "Incidents open now, by severity", labels=["severity"]
        )
        for severity in sorted(set(SEVERITIES) | set(pipeline.open_incidents)):
            open_incidents.add_metric([severity], pipeline.open_incidents.get(severity, 0))
        yield open_incidents
        found = GaugeMetricFamily(
            "tillsyn_findings",
            "Current findings across all nodes, by control (M01-M13) and status (passing, failing, unknown, stale)",
            labels=["control", "status"],
        )
        for (control, status), count in sorted(pipeline.findings.items()):
            found.add_metric([control, status], count)
        yield found
        versions = GaugeMetricFamily(
            "tillsyn_agents_by_version", "Enrolled, unrevoked nodes by the agent version they run", labels=["version"]
        )
        for version, count in sorted(pipeline.agent_versions.items()):
            versions.add_metric([version], count)
        yield versions


def _channel_families(pipeline: Pipeline) -> Iterable[GaugeMetricFamily]:
    waiting = GaugeMetricFamily(
        "tillsyn_outbox_waiting", "Notifications in the outbox not yet delivered, by channel", labels=["channel"]
    )
    oldest = GaugeMetricFamily(
        "tillsyn_outbox_oldest_age_seconds",
        "How long the oldest undelivered notification of each channel has waited (0: none waiting)",
        labels=["channel"],
    )
    failing = GaugeMetricFamily(
        "tillsyn_channel_failing_seconds",
        "How long each channel has been failing: the age of its oldest notification that failed at least once",
        labels=["channel"],
    )
    since = GaugeMetricFamily(
        "tillsyn_channel_seconds_since_delivery",
        "Seconds since each channel last delivered a notification (absent: none delivered yet)",
        labels=["channel"],
    )
    for name, channel in sorted(pipeline.channels.items()):
        waiting.add_metric([name], channel.waiting)
        oldest.add_metric([name], channel.oldest_waiting_s)
        failing.add_metric([name], channel.failing_s)
        if channel.since_delivery_s is not None:
            since.add_metric([name], channel.since_delivery_s)
    yield from (waiting, oldest, failing, since)


class Metrics:
    def __init__(
        self,
        node_counts: Callable[[], Dict[str, int]],
        backlog: Callable[[], int],
        pipeline: Optional[Callable[[], Tuple[Optional[Pipeline], List[Problem]]]] = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.reports = Counter("tillsyn_reports_ingested", "Reports stored", registry=self.registry)
        self.duplicates = Counter(
            "tillsyn_reports_duplicate",
            "Reports received again and acknowledged, not stored twice",
            registry=self.registry,
        )
        self.heartbeats = Counter("tillsyn_heartbeats", "Heartbeats accepted", registry=self.registry)
        self.rejected = Counter(
            "tillsyn_requests_rejected", "Requests refused, by reason", ["endpoint", "reason"], registry=self.registry
        )
        self.ingest_seconds = Histogram(
            "tillsyn_ingest_seconds",
            "Time to verify and store a batch of reports",
            registry=self.registry,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.evaluated = Counter(
            "tillsyn_reports_evaluated", "Reports judged against the policy", registry=self.registry
        )
        self.evaluation_failed = Counter(
            "tillsyn_reports_evaluation_failed",
            "Stored reports the database refused to judge (see the log); they stay in the ledger",
            registry=self.registry,
        )
        self.notifications_sent = Counter(
            "tillsyn_notifications_sent",
            "Notifications this process delivered, by channel and kind (trigger, repeat, resolve, update)",
            ["channel", "kind"],
            registry=self.registry,
        )
        self.notifications_failed = Counter(
            "tillsyn_notifications_failed",
            "Attempts this process made to deliver a notification that failed (retried later), by channel and kind",
            ["channel", "kind"],
            registry=self.registry,
        )
        self.duty_seconds = Histogram(
            "tillsyn_duty_round_seconds",
            "Time one duty round took in this process (silent nodes, stale findings, incidents, retention)",
            registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
        )
        self.duty_ok_at = Gauge(
            "tillsyn_duty_last_success_timestamp_seconds",
            "When this process last finished a duty round without error (Unix time)",
            registry=self.registry,
        )
        self.registry.register(_NodeStates(node_counts))
        self.registry.register(_Backlog(backlog))
        if pipeline is not None:
            self.registry.register(_PipelineGauges(pipeline))

    def channels(self, names: Iterable[str]) -> None:
        """Every configured channel and kind appears from the start, at 0 (a rate needs a first sample)."""
        for name in names:
            for kind in KINDS:
                self.notifications_sent.labels(name, kind)
                self.notifications_failed.labels(name, kind)
