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
Shadow traffic (`ShadowMetrics`) adds `challenger_version` on the champion's side,
taken from the challenger's answers, so one query names both versions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from modelserver.agreement import AgreementSnapshot, Compared
from modelserver.drift import DriftSnapshot

# Serving one row takes about a millisecond; the default buckets start at 5 ms
# and would put every request in the first bucket.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
)  # fmt: skip
FEEDBACK_OUTCOMES = ("correct", "incorrect", "unknown_request")
# A regressor's labelled rows are scored, not right or wrong.
REGRESSION_FEEDBACK_OUTCOMES = ("scored", "unknown_request")
# What became of a copy sent to the challenger (modelserver.shadow).
SHADOW_OUTCOMES = ("compared", "failed", "timeout", "dropped")
# Challenger versions whose shadow series are kept: a rollout has one, a few cover
# the rollouts a scrape can still see; an answer inventing versions cannot grow
# the scrape without bound.
MAX_CHALLENGER_VERSIONS = 4


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
        self.shadow = ShadowMetrics(registry, base, regression)

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


class ShadowWindow(Collector):
    """Reports the latest agreement window, set by the evaluator; absent before the
    first compared answer, and its figures absent below the window's minimum."""

    def __init__(self, base: dict[str, str]) -> None:
        self._base = base
        self.snapshot = AgreementSnapshot(challenger_version="", rows=0)

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        snapshot = self.snapshot
        if not snapshot.rows:
            return
        names = [*self._base, "challenger_version"]
        values = [*self._base.values(), snapshot.challenger_version]
        figures: tuple[tuple[str, float | None, str], ...] = (
            ("modelserver_shadow_window_rows", float(snapshot.rows),
             "Compared rows in the shadow agreement window at the last evaluation."),
            ("modelserver_shadow_agreement_ratio", snapshot.agreement,
             "Share of the window's compared rows whose label the challenger shares (classifier)."),
            ("modelserver_shadow_prediction_psi", snapshot.prediction_psi,
             "PSI between the champion's and the challenger's predictions in the window."),
            ("modelserver_shadow_mean_abs_difference", snapshot.mean_abs_difference,
             "Mean |champion - challenger| prediction over the window's rows (regressor)."),
        )  # fmt: skip
        for metric, value, meaning in figures:
            if value is not None:
                gauge = GaugeMetricFamily(metric, meaning, labels=names)
                gauge.add_metric(values, value)
                yield gauge


class ShadowMetrics:
    """Shadow traffic on both sides (modelserver.shadow). The champion: the percent it
    mirrors, what became of each copy, each compared row's agreement (a classifier) or
    absolute difference (a regressor), and the window's figures. The challenger: the
    copies it served, which modelserver_requests_total leaves out so that the error
    rate and traffic share stay what clients got."""

    def __init__(self, registry: CollectorRegistry, base: dict[str, str], regression: bool) -> None:
        names = list(base)
        self._values = tuple(base.values())
        self.mirror_percent = Gauge(
            "modelserver_shadow_mirror_percent",
            "Percent of requests this server mirrors to the challenger now (0: not the "
            "champion, no shadow phase, or an unusable shadow configuration).",
            names,
            registry=registry,
        ).labels(*self._values)
        self.in_flight = Gauge(
            "modelserver_shadow_in_flight",
            "Copies sent to the challenger and not answered yet (at most "
            "MODELSERVER_SHADOW_MAX_IN_FLIGHT).",
            names,
            registry=registry,
        ).labels(*self._values)
        by_version = [*names, "challenger_version"]
        self._requests = Counter(
            "modelserver_shadow_requests",
            "Copies of live requests sent to the challenger, by outcome: compared, failed "
            "(refused, an error status, or no prediction for the rows), timeout, dropped "
            "(too many in flight). challenger_version is empty when nothing answered.",
            [*by_version, "outcome"],
            registry=registry,
        )
        self._agreement: Counter | None = None
        self._difference: Summary | None = None
        if regression:
            self._difference = Summary(
                "modelserver_shadow_absolute_difference",
                "|champion - challenger| prediction of each compared row (regressor).",
                by_version,
                registry=registry,
            )
        else:
            self._agreement = Counter(
                "modelserver_shadow_agreement",
                "Compared rows, by whether the challenger predicted the champion's label.",
                [*by_version, "agreed"],
                registry=registry,
            )
        self._served = Counter(
            "modelserver_shadow_served",
            "Shadow copies this server answered as the challenger, by endpoint and code "
            "(not in modelserver_requests_total).",
            [*names, "endpoint", "code"],
            registry=registry,
        )
        self._served_duration = Histogram(
            "modelserver_shadow_served_duration_seconds",
            "Time from a shadow copy received to its answer ready, by endpoint.",
            [*names, "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.window = ShadowWindow(base)
        registry.register(self.window)
        self._versions: list[str] = []

    def count_outcome(self, challenger_version: str, outcome: str) -> None:
        self._known(challenger_version)
        self._requests.labels(*self._values, challenger_version, outcome).inc()

    def count_compared(self, challenger_version: str, compared: Compared) -> None:
        self.count_outcome(challenger_version, "compared")
        if self._agreement is not None:
            agreement = self._agreement
            agreement.labels(*self._values, challenger_version, "true").inc(compared.agreed)
            disagreed = compared.rows - compared.agreed
            agreement.labels(*self._values, challenger_version, "false").inc(disagreed)
        if self._difference is not None:
            difference = self._difference.labels(*self._values, challenger_version)
            for value in compared.differences:
                difference.observe(value)

    def observe_served(self, endpoint: str, code: int, seconds: float) -> None:
        self._served.labels(*self._values, endpoint, str(code)).inc()
        self._served_duration.labels(*self._values, endpoint).observe(seconds)

    def _known(self, version: str) -> None:
        """A version's series, all at 0 from its first copy (so rate() sees the first
        increment); the oldest version's go when one too many has answered."""
        if version in self._versions:
            return
        self._versions.append(version)
        for outcome in SHADOW_OUTCOMES:
            self._requests.labels(*self._values, version, outcome)
        if self._agreement is not None:
            for agreed in ("true", "false"):
                self._agreement.labels(*self._values, version, agreed)
        if len(self._versions) <= MAX_CHALLENGER_VERSIONS:
            return
        oldest = self._versions.pop(0)
        for outcome in SHADOW_OUTCOMES:
            self._requests.remove(*self._values, oldest, outcome)
        if self._agreement is not None:
            for agreed in ("true", "false"):
                self._agreement.remove(*self._values, oldest, agreed)
        if self._difference is not None:
            with contextlib.suppress(KeyError):
                self._difference.remove(*self._values, oldest)
