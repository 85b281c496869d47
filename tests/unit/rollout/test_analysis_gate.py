"""Analysis verdicts gate the steps: pass, wait, hold, roll back (measuring is not here)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from rollout_world import World, deployed, make_spec

from modelrollout.rollout import MetricVerdict

pytestmark = pytest.mark.unit

ANALYSIS: dict[str, Any] = {
    "interval": "30s",
    "failureLimit": 1,
    "prometheus": {"address": "http://prometheus:9090"},
    "metrics": [
        {"name": "error-rate", "query": "rate(errors[1m])", "max": 0.05},
        {"name": "shadow", "query": "up", "min": 1, "dryRun": True},
    ],
}


def in_canary(**analysis: Any) -> tuple[World, str, str]:
    world = deployed(
        make_spec(steps=[{"setWeight": 25}, {"setWeight": 50}], analysis={**ANALYSIS, **analysis})
    )
    stable = world.revision
    world.change_spec(model={"version": "2"})
    world.plan()
    world.ready()
    world.plan()
    return world, stable, world.revision


def measure(world: World, verdict: str, name: str = "error-rate", **extra: Any) -> None:
    world.wait(30)
    world.verdicts[name] = MetricVerdict(verdict, world.now, **extra)  # type: ignore[arg-type]


def test_a_step_waits_for_a_passing_measurement_taken_during_it() -> None:
    world, _, _canary = in_canary()
    assert world.status.current_step == 0
    assert world.status.reason == "WaitingForAnalysis"
    result = world.plan()
    assert result.requeue_after == pytest.approx(30)  # the analysis interval
    measure(world, "pass")
    world.plan()
    assert world.status.current_step == 1
    assert world.status.analysis["error-rate"].successes == 1
    world.ready()
    world.plan()
    assert world.status.reason == "WaitingForAnalysis"  # the old pass predates this step


def test_failures_beyond_the_limit_roll_back_automatically() -> None:
    world, stable, canary = in_canary()
    measure(world, "fail", value=0.2, threshold="max 0.05")
    world.plan()
    assert world.status.canary_revision == canary  # one failure is within failureLimit 1
    measure(world, "fail", value=0.3, threshold="max 0.05")
    world.plan()
    assert world.status.phase == "Degraded"
    assert world.status.reason == "RolledBack"
    assert world.routes["main"] == stable
    assert world.replicas()[canary] == 0
    rollback = world.status.last_rollback
    assert rollback is not None
    assert (rollback.metric, rollback.value, rollback.threshold) == ("error-rate", 0.3, "max 0.05")
    world.settle()
    assert world.status.canary_revision is None  # held: not rolled out again


def test_the_same_measurement_is_counted_once() -> None:
    world, _, _ = in_canary()
    measure(world, "fail")
    world.plan()
    world.plan()
    world.plan()
    assert world.status.analysis["error-rate"].failures == 1
    assert world.status.canary_revision is not None


def test_without_automatic_rollback_a_failure_halts_degraded() -> None:
    world = deployed(
        make_spec(
            steps=[{"setWeight": 25}],
            analysis={**ANALYSIS, "failureLimit": 0},
            rollback={"automatic": False},
        )
    )
    world.change_spec(model={"version": "2"})
    world.plan()
    world.ready()
    measure(world, "fail")
    world.plan()
    assert world.status.phase == "Degraded"
    assert world.status.reason == "AnalysisFailed"
    assert world.status.canary_revision is not None
    assert world.routes["main"] is None  # traffic stays as it was


@pytest.mark.parametrize(
    ("on_no_data", "phase", "reason"),
    [
        ("Pause", "Paused", "AnalysisNoData"),
        ("Fail", "Degraded", "RolledBack"),
        # Ignore skips a check without data, but no data never promotes by itself.
        ("Ignore", "Progressing", "WaitingForAnalysis"),
    ],
)
def test_no_data_follows_on_no_data(on_no_data: str, phase: str, reason: str) -> None:
    world, _, _ = in_canary(onNoData=on_no_data, failureLimit=0)
    for _ in range(3):
        measure(world, "nodata")
        world.plan()
        world.ready()
    assert (world.status.phase, world.status.reason) == (phase, reason)
    if on_no_data != "Fail":
        assert world.status.current_step == 0, "missing data moved the canary on"
        assert world.status.analysis["error-rate"].successes == 0


def test_ignore_lets_the_checks_with_data_decide() -> None:
    latency = {"name": "latency", "query": "p99", "max": 0.5}
    world, _, _ = in_canary(onNoData="Ignore", metrics=[*ANALYSIS["metrics"], latency])
    measure(world, "nodata")
    world.verdicts["latency"] = MetricVerdict("pass", world.now)
    world.plan()
    assert world.status.current_step == 1
    world.ready()
    world.plan()
    measure(world, "nodata")
    world.verdicts["latency"] = MetricVerdict("fail", world.now)
    world.plan()
    assert world.status.current_step == 1, "a failing check with data is not outvoted by no data"


def test_query_errors_roll_back_after_the_consecutive_limit() -> None:
    world, _, _ = in_canary(consecutiveErrorLimit=2)
    for _ in range(2):
        measure(world, "error", message="connection refused")
        world.plan()
    assert world.status.canary_revision is not None
    measure(world, "error", message="connection refused")
    world.plan()
    assert world.status.reason == "RolledBack"
    assert "connection refused" in world.status.message


def test_dry_run_metrics_are_reported_but_never_decide() -> None:
    world, _, _ = in_canary(failureLimit=0)
    measure(world, "fail", name="shadow")
    measure(world, "pass")
    world.plan()
    assert world.status.analysis["shadow"].failures == 1
    assert world.status.current_step == 1


def test_inconclusive_holds_until_promote() -> None:
    world, _, _ = in_canary()
    measure(world, "inconclusive")
    world.plan()
    assert (world.status.phase, world.status.reason) == ("Paused", "AnalysisInconclusive")
    world.send("promote")
    world.plan()
    assert world.status.current_step == 1


def test_measurements_from_before_the_rollout_are_ignored() -> None:
    world, _, _ = in_canary()
    world.verdicts["error-rate"] = MetricVerdict(
        "fail",
        world.status.rollout_started_at - timedelta(seconds=1),  # type: ignore[operator]
    )
    world.plan()
    assert "error-rate" not in world.status.analysis


def test_query_errors_within_the_limit_pause_and_the_rollout_continues_after() -> None:
    world, _, _ = in_canary(consecutiveErrorLimit=4)
    measure(world, "error", message="connection refused")
    world.plan()
    assert (world.status.phase, world.status.reason) == ("Paused", "AnalysisUnavailable")
    assert "connection refused" in world.status.message
    assert world.status.current_step == 0, "an error never promotes"
    measure(world, "pass")
    world.plan()
    assert world.status.current_step == 1
    assert world.status.analysis["error-rate"].consecutive_errors == 0


def test_a_measurement_of_another_revision_is_not_counted() -> None:
    world, stable, canary = in_canary()
    world.wait(30)
    world.verdicts["error-rate"] = MetricVerdict("fail", world.now, revision=stable)
    world.plan()
    assert "error-rate" not in world.status.analysis
    world.verdicts["error-rate"] = MetricVerdict("pass", world.now, revision=canary)
    world.plan()
    assert world.status.analysis["error-rate"].revision == canary
    assert world.status.current_step == 1


def test_last_rollback_names_the_metric_value_threshold_revision_and_time() -> None:
    world, _, canary = in_canary(failureLimit=0)
    measure(world, "fail", value=0.31, threshold="max 0.05", revision=canary)
    world.plan()
    rollback = world.status.last_rollback
    assert rollback is not None
    assert (rollback.revision, rollback.version, rollback.reason) == (canary, "2", "RolledBack")
    assert (rollback.metric, rollback.value, rollback.threshold) == ("error-rate", 0.31, "max 0.05")
    assert rollback.at == world.now
    assert [e.reason for e in world.events if e.type == "Warning"] == ["RolledBack"]
