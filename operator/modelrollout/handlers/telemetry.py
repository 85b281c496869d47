"""The operator's own Prometheus metrics: what it rolled out, promoted and rolled
back, what analysis measured, the canary weight in effect, reconcile errors and
how long objects stay in each phase.

Why from the reconcile outcome: the decision core already says what happened
(its plan's events are emitted once per transition, replanning the same state
yields none) and the new status is what users see, so counting events and
reading the status gives the same story as `kubectl describe`, with no second
source of truth. Why an injected CollectorRegistry: a process-global registry
would mix the operator's series with any library's and make two operators in
one process (tests, embedding) share counters.

Series are per ModelDeployment (`namespace`, `name`), and per analysis check or
phase where that is the point; they are removed when the object's daemon stops
(deleted, or this replica paused by peering), so a replica only exports what it
acts on. Aggregate with `max by (namespace, name)` across replicas.

Why counters start at 0 and rollbacks also have a timestamp: a counter series
that first appears at 1 has no increase for Prometheus (`increase()` sees one
sample), so the first rollout of an object would be invisible. The per-object
counters are therefore created at 0 when the object is first seen; a rollback's
labels (reason, failing check) are only known when it happens, so alerts read
`modelrollout_last_rollback_timestamp_seconds` instead, taken from
status.lastRollback: it fires on the first rollback too, and survives a restart
or a peering handover (the new replica exports it from the status it reads).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from modelrollout.api.ownership import ObjectKey
from modelrollout.api.reasons import ROLLBACK_REASONS, Reason

if TYPE_CHECKING:
    from modelrollout.api import ModelDeploymentStatus
    from modelrollout.rollout import Event, MetricVerdict

PHASES = ("Progressing", "Paused", "Healthy", "Degraded")
# Phases last from seconds (a blue/green switch) to days (Healthy), so buckets
# span both; a rollout stuck for hours shows in the top buckets.
PHASE_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400, 604800)
# A reconcile is one GET, two LISTs, the writes and any Prometheus queries
# (10 s timeout each): from milliseconds to tens of seconds.
RECONCILE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass
class _ObjectSeries:
    """What this process exports for one object, to remove it all at once."""

    phase: str | None = None
    # None while in the first phase seen: it began before this process watched.
    phase_since: float | None = None
    labelled: set[tuple[Counter | Gauge, tuple[str, ...]]] = field(default_factory=set)
    # The labels of the exported last-rollback timestamp, replaced on the next one.
    last_rollback: tuple[str, ...] | None = None


class Telemetry:
    """Records reconcile outcomes into collectors on `registry`. Thread-safe:
    reconciles run in a thread pool."""

    def __init__(
        self, registry: CollectorRegistry, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.registry = registry
        self._clock = clock
        self._lock = threading.Lock()
        self._objects: dict[ObjectKey, _ObjectSeries] = {}
        obj = ["namespace", "name"]
        self._started = Counter(
            "modelrollout_rollouts_started",
            "Rollouts started (a new revision began its canary or blue/green).",
            obj,
            registry=registry,
        )
        self._completed = Counter(
            "modelrollout_rollouts_completed",
            "Rollouts completed: the new revision was promoted and serves all traffic.",
            obj,
            registry=registry,
        )
        self._rolled_back = Counter(
            "modelrollout_rollouts_rolled_back",
            "Rollouts rolled back, by reason (RolledBack: analysis failed; Aborted: "
            "`abort`, also of an undo; ProgressDeadlineExceeded: pods not ready in time) "
            "and the failing check (empty if none).",
            [*obj, "reason", "metric"],
            registry=registry,
        )
        self._last_rollback = Gauge(
            "modelrollout_last_rollback_timestamp_seconds",
            "Unix time of the object's last rollback (status.lastRollback.at), by reason "
            "and failing check; absent if it was never rolled back.",
            [*obj, "reason", "metric"],
            registry=registry,
        )
        self._measurements = Counter(
            "modelrollout_analysis_measurements",
            "Analysis measurements, by check and result (pass, fail, nodata, inconclusive, error).",
            [*obj, "metric", "result"],
            registry=registry,
        )
        self._value = Gauge(
            "modelrollout_analysis_value",
            "The last value an analysis check measured (absent when it had no data).",
            [*obj, "metric"],
            registry=registry,
        )
        self._weight = Gauge(
            "modelrollout_canary_weight",
            "Percent of traffic on the revision being rolled out, as in effect "
            "(status.canaryWeight).",
            obj,
            registry=registry,
        )
        self._phase = Gauge(
            "modelrollout_phase",
            "1 for the object's current phase, 0 for the others.",
            [*obj, "phase"],
            registry=registry,
        )
        self._phase_seconds = Histogram(
            "modelrollout_phase_duration_seconds",
            "Time an object spent in a phase, observed when it leaves the phase.",
            ["phase"],
            buckets=PHASE_BUCKETS,
            registry=registry,
        )
        for phase in PHASES:  # at 0, for the same reason as the counters
            self._phase_seconds.labels(phase=phase)
        self._rollout_started = Gauge(
            "modelrollout_rollout_started_timestamp_seconds",
            "Unix time the rollout in flight began (status.rolloutStartedAt); "
            "absent when no rollout runs.",
            obj,
            registry=registry,
        )
        self._drifted = Gauge(
            "modelrollout_drifted",
            "1 while the stable revision drifts (status.drift is set), else 0.",
            obj,
            registry=registry,
        )
        self._errors = Counter(
            "modelrollout_reconcile_errors",
            "Reconciles that failed (API errors); the operator retries with back-off.",
            obj,
            registry=registry,
        )
        self._reconcile_seconds = Histogram(
            "modelrollout_reconcile_duration_seconds",
            "Wall time of one reconcile, measurements and writes included.",
            buckets=RECONCILE_BUCKETS,
            registry=registry,
        )

    def record(
        self,
        key: ObjectKey,
        events: tuple[Event, ...],
        status: ModelDeploymentStatus,
        verdicts: Mapping[str, MetricVerdict],
        duration_seconds: float,
    ) -> None:
        """One successful reconcile: its events, the status it wrote (or left),
        the measurements it took and how long it took."""
        with self._lock:
            series = self._series(key)
            self._reconcile_seconds.observe(duration_seconds)
            for event in events:
                if event.reason == Reason.ROLLOUT_STARTED:
                    self._inc(series, self._started, key)
                elif event.reason == Reason.PROMOTED:
                    self._inc(series, self._completed, key)
                elif event.reason in ROLLBACK_REASONS:
                    rollback = status.last_rollback
                    metric = (rollback.metric if rollback else None) or ""
                    self._inc(series, self._rolled_back, (*key, event.reason, metric))
            for metric, verdict in verdicts.items():
                self._inc(series, self._measurements, (*key, metric, verdict.verdict))
                labels = (*key, metric)
                if verdict.value is None:
                    self._remove(series, self._value, labels)
                else:
                    self._set(series, self._value, labels, verdict.value)
            self._record_last_rollback(key, series, status)
            self._set(series, self._weight, key, status.canary_weight)
            self._set(series, self._drifted, key, 1 if status.drift is not None else 0)
            if status.rollout_in_flight and status.rollout_started_at is not None:
                started = status.rollout_started_at.timestamp()
                self._set(series, self._rollout_started, key, started)
            else:
                self._remove(series, self._rollout_started, key)
            self._record_phase(key, series, status.phase)

    def record_error(self, key: ObjectKey) -> None:
        with self._lock:
            self._inc(self._series(key), self._errors, key)

    def forget(self, key: ObjectKey) -> None:
        """The object is gone or no longer ours: drop its series (not the
        phase histogram, which has no object labels)."""
        with self._lock:
            series = self._objects.pop(key, None)
            if series is None:
                return
            for collector, labels in series.labelled:
                collector.remove(*labels)

    def _series(self, key: ObjectKey) -> _ObjectSeries:
        """The object's series; on first sight its counters are created at 0, so
        that the first increment is an increase Prometheus can see."""
        series = self._objects.get(key)
        if series is None:
            series = self._objects[key] = _ObjectSeries()
            for counter in (self._started, self._completed, self._errors):
                counter.labels(*key)
                series.labelled.add((counter, key))
        return series

    def _record_last_rollback(
        self, key: ObjectKey, series: _ObjectSeries, status: ModelDeploymentStatus
    ) -> None:
        """One series per object: a later rollback with another reason or check
        replaces it."""
        rollback = status.last_rollback
        labels = None if rollback is None else (*key, rollback.reason, rollback.metric or "")
        if series.last_rollback is not None and series.last_rollback != labels:
            self._remove(series, self._last_rollback, series.last_rollback)
        series.last_rollback = labels
        if rollback is not None and labels is not None:  # (the same condition, for mypy)
            self._set(series, self._last_rollback, labels, rollback.at.timestamp())

    def _record_phase(self, key: ObjectKey, series: _ObjectSeries, phase: str | None) -> None:
        if phase is None or phase == series.phase:
            return
        now = self._clock()
        if series.phase is not None and series.phase_since is not None:
            # Only phases seen from their start are timed: the first one this
            # process sees began before it was watching.
            self._phase_seconds.labels(phase=series.phase).observe(now - series.phase_since)
        series.phase_since = None if series.phase is None else now
        series.phase = phase
        for candidate in PHASES:
            self._set(series, self._phase, (*key, candidate), 1 if candidate == phase else 0)

    def _inc(self, series: _ObjectSeries, counter: Counter, labels: tuple[str, ...]) -> None:
        counter.labels(*labels).inc()
        series.labelled.add((counter, labels))

    def _set(
        self, series: _ObjectSeries, gauge: Gauge, labels: tuple[str, ...], value: float
    ) -> None:
        gauge.labels(*labels).set(value)
        series.labelled.add((gauge, labels))

    def _remove(self, series: _ObjectSeries, gauge: Gauge, labels: tuple[str, ...]) -> None:
        if (gauge, labels) in series.labelled:
            gauge.remove(*labels)
            series.labelled.discard((gauge, labels))
