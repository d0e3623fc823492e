"""Prometheus metrics of one centre process (a registry per app, no globals)."""

from __future__ import annotations

from typing import Callable, Dict, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


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


class Metrics:
    def __init__(self, node_counts: Callable[[], Dict[str, int]], backlog: Callable[[], int]) -> None:
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
        self.registry.register(_NodeStates(node_counts))
        self.registry.register(_Backlog(backlog))
