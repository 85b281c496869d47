"""The operator's own metrics tell the same story as the reconcile outcomes they
are recorded from: rollouts started, promoted and rolled back (by reason and
check), each measurement by result, the weight in effect, time in each phase,
errors; and an object's series go away with it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from modelrollout.api import parse_status
from modelrollout.handlers.telemetry import Telemetry
from modelrollout.rollout import Event, MetricVerdict

pytestmark = pytest.mark.unit

KEY = ("ml", "fraud")
AT = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def status(**fields: Any) -> Any:
    return parse_status({"phase": "Healthy", **fields})


def value(registry: CollectorRegistry, metric_name: str, /, **labels: str) -> float | None:
    return registry.get_sample_value(metric_name, labels)


def test_a_rollout_that_starts_measures_and_is_promoted() -> None:
    registry, clock = CollectorRegistry(), Clock()
    telemetry = Telemetry(registry, clock)
    telemetry.record(KEY, (), status(), {}, 0.02)
    clock.now += 5
    rolling = status(
        phase="Progressing",
        canaryRevision="abc",
        canaryVersion="8",
        canaryWeight=25,
        rolloutStartedAt="2025-01-01T12:00:00Z",
    )
    telemetry.record(KEY, (Event("RolloutStarted", "rolling out"),), rolling, {}, 0.03)
    verdicts = {"error-rate": MetricVerdict("pass", AT, value=0.01, threshold="max 0.05")}
    clock.now += 30
    telemetry.record(KEY, (), rolling, verdicts, 0.5)
    nodata = {"error-rate": MetricVerdict("nodata", AT)}
    telemetry.record(KEY, (), rolling, nodata, 0.5)
    clock.now += 60
    telemetry.record(KEY, (Event("Promoted", "promoted"),), status(canaryWeight=0), {}, 0.04)

    ml = {"namespace": "ml", "name": "fraud"}
    assert value(registry, "modelrollout_rollouts_started_total", **ml) == 1
    assert value(registry, "modelrollout_rollouts_completed_total", **ml) == 1
    passed = {**ml, "metric": "error-rate", "result": "pass"}
    assert value(registry, "modelrollout_analysis_measurements_total", **passed) == 1
    no_data = {**ml, "metric": "error-rate", "result": "nodata"}
    assert value(registry, "modelrollout_analysis_measurements_total", **no_data) == 1
    # No data removes the last value rather than keep a stale one.
    assert value(registry, "modelrollout_analysis_value", **ml, metric="error-rate") is None
    assert value(registry, "modelrollout_canary_weight", **ml) == 0
    assert value(registry, "modelrollout_phase", **ml, phase="Healthy") == 1
    assert value(registry, "modelrollout_phase", **ml, phase="Progressing") == 0
    # Healthy was already under way when first seen: only Progressing (90 s) is timed.
    progressing = {"phase": "Progressing"}
    assert value(registry, "modelrollout_phase_duration_seconds_count", **progressing) == 1
    assert value(registry, "modelrollout_phase_duration_seconds_sum", **progressing) == 90
    assert value(registry, "modelrollout_phase_duration_seconds_count", phase="Healthy") == 0
    # No rollout in flight any more: no start timestamp to alert on.
    assert value(registry, "modelrollout_rollout_started_timestamp_seconds", **ml) is None
    assert value(registry, "modelrollout_reconcile_duration_seconds_count") == 5


def test_the_weight_the_value_and_the_start_of_a_rollout_in_flight() -> None:
    registry = CollectorRegistry()
    telemetry = Telemetry(registry)
    rolling = status(
        phase="Paused",
        canaryRevision="abc",
        canaryVersion="8",
        canaryWeight=50,
        rolloutStartedAt="2025-01-01T12:00:00Z",
    )
    verdicts = {"quality": MetricVerdict("fail", AT, value=0.3, threshold="min 0.8")}
    telemetry.record(KEY, (), rolling, verdicts, 0.1)
    ml = {"namespace": "ml", "name": "fraud"}
    assert value(registry, "modelrollout_canary_weight", **ml) == 50
    assert value(registry, "modelrollout_analysis_value", **ml, metric="quality") == 0.3
    started = value(registry, "modelrollout_rollout_started_timestamp_seconds", **ml)
    assert started == AT.timestamp()


@pytest.mark.parametrize(
    ("reason", "metric"),
    # (Not "Undone": it holds a revision but rolls nothing back; no Event has it.)
    [("RolledBack", "quality"), ("Aborted", ""), ("ProgressDeadlineExceeded", "")],
)
def test_rollbacks_are_counted_by_reason_and_failing_check(reason: str, metric: str) -> None:
    registry = CollectorRegistry()
    telemetry = Telemetry(registry)
    rollback = {
        "revision": "abc",
        "version": "8",
        "reason": reason,
        "metric": metric or None,
        "at": "2025-01-01T12:00:00Z",
    }
    degraded = status(phase="Degraded", lastRollback=rollback)
    telemetry.record(KEY, (Event(reason, "back to stable", "Warning"),), degraded, {}, 0.1)
    labels = {"namespace": "ml", "name": "fraud", "reason": reason, "metric": metric}
    assert value(registry, "modelrollout_rollouts_rolled_back_total", **labels) == 1
    assert value(registry, "modelrollout_last_rollback_timestamp_seconds", **labels) == (
        AT.timestamp()
    )
    ml = {"namespace": "ml", "name": "fraud"}
    assert value(registry, "modelrollout_rollouts_started_total", **ml) == 0


def test_counters_exist_at_zero_from_first_sight_so_the_first_increment_is_an_increase() -> None:
    """Prometheus sees no increase in a series that first appears at 1: the
    first rollout of an object would be missing from increase() and rate()."""
    registry = CollectorRegistry()
    telemetry = Telemetry(registry)
    telemetry.record(KEY, (), status(), {}, 0.1)
    ml = {"namespace": "ml", "name": "fraud"}
    for counter in ("started", "completed"):
        assert value(registry, f"modelrollout_rollouts_{counter}_total", **ml) == 0
    assert value(registry, "modelrollout_reconcile_errors_total", **ml) == 0
    # Nothing was rolled back: no timestamp (an alert on it must stay silent).
    assert not [
        sample
        for metric in registry.collect()
        if metric.name == "modelrollout_last_rollback_timestamp_seconds"
        for sample in metric.samples
    ]
    telemetry.record(KEY, (Event("RolloutStarted", "rolling out"),), status(), {}, 0.1)
    assert value(registry, "modelrollout_rollouts_started_total", **ml) == 1


def rolled_back(reason: str, metric: str | None, at: str) -> Any:
    record = {"revision": "abc", "version": "8", "reason": reason, "metric": metric, "at": at}
    return status(phase="Degraded", lastRollback=record)


def test_the_last_rollback_timestamp_follows_the_status_across_restarts() -> None:
    """From status.lastRollback: one series per object, replaced by the next
    rollback, and exported again by a new process (restart, peering handover)
    without any event, so the rollback alert survives both."""
    registry = CollectorRegistry()
    telemetry = Telemetry(registry)
    first = rolled_back("RolledBack", "error-rate", "2025-01-01T12:00:00Z")
    telemetry.record(KEY, (Event("RolledBack", "back", "Warning"),), first, {}, 0.1)
    second = rolled_back("Aborted", None, "2025-01-01T13:00:00Z")
    telemetry.record(KEY, (Event("Aborted", "back", "Warning"),), second, {}, 0.1)
    telemetry.record(KEY, (), second, {}, 0.1)  # a resync changes nothing
    ml = {"namespace": "ml", "name": "fraud"}
    stamp = "modelrollout_last_rollback_timestamp_seconds"
    assert value(registry, stamp, **ml, reason="RolledBack", metric="error-rate") is None
    assert value(registry, stamp, **ml, reason="Aborted", metric="") == AT.timestamp() + 3600

    restarted = CollectorRegistry()
    Telemetry(restarted).record(KEY, (), second, {}, 0.1)
    assert value(restarted, stamp, **ml, reason="Aborted", metric="") == AT.timestamp() + 3600

    telemetry.forget(KEY)
    assert value(registry, stamp, **ml, reason="Aborted", metric="") is None


def test_drift_errors_and_forgetting_an_object() -> None:
    registry = CollectorRegistry()
    telemetry = Telemetry(registry)
    drift = {
        "revision": "abc",
        "version": "7",
        "metric": "psi",
        "since": "2025-01-01T12:00:00Z",
    }
    telemetry.record(KEY, (), status(drift=drift), {}, 0.1)
    telemetry.record(("ml", "other"), (), status(), {}, 0.1)
    telemetry.record_error(KEY)
    telemetry.record_error(KEY)
    ml = {"namespace": "ml", "name": "fraud"}
    assert value(registry, "modelrollout_drifted", **ml) == 1
    assert value(registry, "modelrollout_drifted", namespace="ml", name="other") == 0
    assert value(registry, "modelrollout_reconcile_errors_total", **ml) == 2

    telemetry.forget(KEY)
    telemetry.forget(KEY)  # twice is harmless (the daemon's finally after a deletion)
    assert value(registry, "modelrollout_drifted", **ml) is None
    assert value(registry, "modelrollout_reconcile_errors_total", **ml) is None
    assert value(registry, "modelrollout_phase", **ml, phase="Healthy") is None
    assert value(registry, "modelrollout_drifted", namespace="ml", name="other") == 0


def test_collectors_live_on_the_injected_registry_only() -> None:
    from prometheus_client import REGISTRY

    first, second = CollectorRegistry(), CollectorRegistry()
    Telemetry(first).record_error(KEY)
    Telemetry(second)  # a second instance registers without clashing
    assert (
        REGISTRY.get_sample_value(
            "modelrollout_reconcile_errors_total", dict(namespace="ml", name="fraud")
        )
        is None
    )
    assert (
        second.get_sample_value(
            "modelrollout_reconcile_errors_total", {"namespace": "ml", "name": "fraud"}
        )
        is None
    )
