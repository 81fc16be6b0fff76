"""Prometheus metrics of the server, in a registry of its own (one per app)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class ServerMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "gigmatch_requests_total",
            "Requests answered, by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "gigmatch_request_seconds",
            "Time to answer, by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.candidates = Histogram(
            "gigmatch_candidates_per_request",
            "Candidates ranked per match request.",
            buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000),
            registry=self.registry,
        )
        self.model_version = Gauge(
            "gigmatch_model_info",
            "The model being served (value 1).",
            ["model_name", "version"],
            registry=self.registry,
        )
        self.log_dropped = Counter(
            "gigmatch_prediction_log_dropped_total",
            "Prediction-log rows dropped (queue full or disk error).",
            registry=self.registry,
        )
        self.outcomes = Counter(
            "gigmatch_outcomes_total",
            "Outcomes reported to /v1/outcomes: accepted (written) or duplicate (already recorded).",
            ["result"],
            registry=self.registry,
        )
        self.outcome_log_dropped = Counter(
            "gigmatch_outcome_log_dropped_total",
            "Outcome-log lines dropped (queue full or disk error).",
            registry=self.registry,
        )

        self.shadow_scored = Counter(
            "gigmatch_shadow_scored_total",
            "Requests the shadow challenger ranked after their answers were sent (never returned).",
            registry=self.registry,
        )
        self.shadow_dropped = Counter(
            "gigmatch_shadow_dropped_total",
            "Requests in the shadow's share it did not rank (queue full, or it could not score them).",
            registry=self.registry,
        )
        self.challenger_version = Gauge(
            "gigmatch_challenger_info",
            "The shadow challenger's model (value 1).",
            ["model_name", "version"],
            registry=self.registry,
        )

    def shadowing(self, model_name: str, version: str) -> None:
        self.challenger_version.clear()
        self.challenger_version.labels(model_name=model_name, version=version).set(1)

    def serving(self, model_name: str, version: str) -> None:
        self.model_version.clear()
        self.model_version.labels(model_name=model_name, version=version).set(1)
