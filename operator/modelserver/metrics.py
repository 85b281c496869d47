"""The server's Prometheus metrics (README: "The reference model server", Metrics),
on an injected registry.

Counters and the latency histogram are ordinary collectors. Drift and live
accuracy come from a custom collector that reports the latest evaluation, so
those gauges are absent, not zero, until enough samples exist: a zero PSI
would tell the rollout analysis "no drift" when the truth is "no data yet".
Every metric carries `model_name` and `model_version`, which is how the
analysis tells the canary from the stable revision. A regressor's feedback
exports errors instead of correct/incorrect: summaries of each labelled row's
absolute and squared error (live MAE is rate(_sum)/rate(_count); RMSE the root
of the squared one's) and windowed MAE and RMSE gauges beside the accuracy one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from modelserver.drift import DriftSnapshot

# Serving one row takes about a millisecond; the default buckets start at 5 ms
# and would put every request in the first bucket.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
)  # fmt: skip
FEEDBACK_OUTCOMES = ("correct", "incorrect", "unknown_request")
# A regressor's labelled rows are scored, not right or wrong.
REGRESSION_FEEDBACK_OUTCOMES = ("scored", "unknown_request")


class LiveState(Collector):
    """Reports the latest drift snapshot and feedback accuracy, set by the evaluator."""

    def __init__(self, base: dict[str, str]) -> None:
        self._base = base
        self.snapshot = DriftSnapshot(samples=0)
        self.accuracy: float | None = None
        self.mae: float | None = None
        self.rmse: float | None = None

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        names = list(self._base)
        values = list(self._base.values())
        snapshot = self.snapshot
        samples = GaugeMetricFamily(
            "modelserver_drift_window_samples",
            "Rows in the drift window at the last evaluation.",
            labels=names,
        )
        samples.add_metric(values, snapshot.samples)
        yield samples
        if snapshot.ready:
            feature_psi = GaugeMetricFamily(
                "modelserver_feature_drift_psi",
                "Population stability index of each feature over the window vs training.",
                labels=[*names, "feature"],
            )
            pvalue = GaugeMetricFamily(
                "modelserver_feature_drift_pvalue",
                "Chi-square goodness-of-fit p-value of each feature's binned window vs training.",
                labels=[*names, "feature"],
            )
            for feature, value in snapshot.feature_psi.items():
                feature_psi.add_metric([*values, feature], value)
                pvalue.add_metric([*values, feature], snapshot.feature_pvalue[feature])
            yield feature_psi
            yield pvalue
            prediction = GaugeMetricFamily(
                "modelserver_prediction_drift_psi",
                "Population stability index of predictions over the window vs training.",
                labels=names,
            )
            prediction.add_metric(values, snapshot.prediction_psi or 0.0)
            yield prediction
        if self.accuracy is not None:
            accuracy = GaugeMetricFamily(
                "modelserver_feedback_accuracy",
                "Share of correct predictions among recent labelled feedback rows.",
                labels=names,
            )
            accuracy.add_metric(values, self.accuracy)
            yield accuracy
        errors: tuple[tuple[str, float | None, str], ...] = (
            ("modelserver_feedback_mae", self.mae, "Mean absolute error"),
            ("modelserver_feedback_rmse", self.rmse, "Root mean squared error"),
        )
        for metric, error, meaning in errors:
            if error is not None:
                gauge = GaugeMetricFamily(
                    metric,
                    f"{meaning} of predictions among recent labelled feedback rows (regression).",
                    labels=names,
                )
                gauge.add_metric(values, error)
                yield gauge


class ServerMetrics:
    def __init__(
        self,
        registry: CollectorRegistry,
        model_name: str,
        model_version: str,
        features: Sequence[str],
        categorical: Sequence[str],
        artifact_sha256: str,
        revision: str,
        regression: bool = False,
    ) -> None:
        base = {"model_name": model_name, "model_version": model_version}
        names = list(base)
        self._values = (model_name, model_version)
        self.requests = Counter(
            "modelserver_requests",
            "Requests answered, by endpoint and HTTP status code.",
            [*names, "endpoint", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            "modelserver_request_duration_seconds",
            "Time from request received to response ready, by endpoint.",
            [*names, "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        missing = Counter(
            "modelserver_feature_missing",
            "Requests or rows refused because a feature was absent or null.",
            [*names, "feature"],
            registry=registry,
        )
        unseen = Counter(
            "modelserver_feature_unseen_category",
            "Rows whose categorical value never occurred in training.",
            [*names, "feature"],
            registry=registry,
        )
        feedback = Counter(
            "modelserver_feedback",
            "Labelled feedback rows, by outcome.",
            [*names, "outcome"],
            registry=registry,
        )
        info = Gauge(
            "modelserver_model_info",
            "The served artifact; always 1.",
            [*names, "artifact_sha256", "revision"],
            registry=registry,
        )
        info.labels(model_name, model_version, artifact_sha256, revision).set(1)
        # Children created up front: series exist at 0 from the first scrape, so
        # rate() works, and the request path skips label lookups.
        self._missing = {f: missing.labels(*self._values, f) for f in features}
        self._unseen = {f: unseen.labels(*self._values, f) for f in categorical}
        outcomes = REGRESSION_FEEDBACK_OUTCOMES if regression else FEEDBACK_OUTCOMES
        self._feedback = {o: feedback.labels(*self._values, o) for o in outcomes}
        self._errors: tuple[Any, Any] | None = None
        if regression:
            absolute = Summary(
                "modelserver_feedback_absolute_error",
                "Absolute error |label - prediction| of each labelled feedback row (regression).",
                names,
                registry=registry,
            )
            squared = Summary(
                "modelserver_feedback_squared_error",
                "Squared error (label - prediction)^2 of each labelled feedback row (regression).",
                names,
                registry=registry,
            )
            self._errors = (absolute.labels(*self._values), squared.labels(*self._values))
        self._durations = {
            e: self.duration.labels(*self._values, e) for e in ("infer", "predict", "feedback")
        }
        records = Counter(
            "modelserver_records",
            "Prediction rows for the inference-records store: written, or dropped (the "
            "store was down or slow and the queue full, or it refused the rows).",
            [*names, "outcome"],
            registry=registry,
        )
        self.records_written = records.labels(*self._values, "written")
        self.records_dropped = records.labels(*self._values, "dropped")
        self.live = LiveState(base)
        registry.register(self.live)

    def observe_request(self, endpoint: str, code: int, seconds: float) -> None:
        self.requests.labels(*self._values, endpoint, str(code)).inc()
        child = self._durations.get(endpoint)
        if child is None:
            child = self._durations[endpoint] = self.duration.labels(*self._values, endpoint)
        child.observe(seconds)

    def count_missing(self, features: Iterable[str]) -> None:
        for feature in features:
            counter = self._missing.get(feature)
            if counter is not None:
                counter.inc()

    def count_unseen(self, counts: dict[str, int]) -> None:
        for feature, n in counts.items():
            self._unseen[feature].inc(n)

    def count_feedback(self, outcome: str, n: int = 1) -> None:
        self._feedback[outcome].inc(n)

    def observe_errors(self, absolute_errors: Iterable[float]) -> None:
        """A regressor's labelled rows: each one's absolute and squared error."""
        assert self._errors is not None, "only a regression model's metrics observe errors"
        absolute, squared = self._errors
        for error in absolute_errors:
            absolute.observe(error)
            squared.observe(error * error)
