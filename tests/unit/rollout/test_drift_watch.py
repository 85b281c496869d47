"""Once Healthy, the stable revision's metrics are watched: drift sets a
condition, emits an Event and clears on recovery, and never starts a rollout."""

from __future__ import annotations

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
        {"name": "accuracy", "query": "acc", "compareTo": "stable", "maxDecrease": 0.02},
    ],
}


def healthy(**analysis: Any) -> World:
    return deployed(make_spec(analysis={**ANALYSIS, **analysis}))


def measure(world: World, verdict: str, name: str = "error-rate", **extra: Any) -> None:
    world.wait(30)
    world.verdicts[name] = MetricVerdict(
        verdict,  # type: ignore[arg-type]
        world.now,
        revision=world.status.stable_revision,
        **extra,
    )


def drifted(world: World) -> str:
    condition = world.status.condition("Drifted")
    assert condition is not None
    return condition.status


def test_while_healthy_the_plan_asks_to_be_woken_every_interval() -> None:
    world = healthy()
    result = world.plan()
    assert result.requeue_after == pytest.approx(30)
    assert drifted(world) == "False"


def test_no_analysis_means_no_drift_watch_and_no_wakeups() -> None:
    world = deployed()
    assert world.plan().requeue_after is None
    assert drifted(world) == "False"


@pytest.mark.parametrize(
    ("verdicts", "is_drifted"),
    [
        (["fail"], False),  # within failureLimit 1
        (["fail", "fail"], True),
        (["fail", "pass", "fail"], False),  # in a row, not in total
        (["fail", "error", "fail"], True),  # errors say nothing about the model
        (["fail", "nodata", "fail"], True),
        (["fail", "fail", "pass"], False),  # recovered
        (["fail", "fail", "error"], True),  # an error does not clear it
        (["pass", "pass"], False),
    ],
)
def test_drift_is_failures_in_a_row_beyond_the_limit(verdicts: list[str], is_drifted: bool) -> None:
    world = healthy()
    for verdict in verdicts:
        measure(world, verdict, value=0.2, threshold="max 0.05")
        world.plan()
    assert (world.status.drift is not None) is is_drifted
    assert drifted(world) == ("True" if is_drifted else "False")
    assert world.status.phase == "Healthy", "drift is no failed rollout"
    assert world.status.canary_revision is None, "drift starts no rollout"


def test_drift_and_recovery_each_emit_one_event_and_show_in_status() -> None:
    world = healthy(failureLimit=0)
    stable = world.status.stable_revision
    measure(world, "fail", value=0.2, threshold="max 0.05")
    world.plan()
    drift = world.status.drift
    assert drift is not None
    assert (drift.revision, drift.version, drift.metric) == (stable, "1", "error-rate")
    assert (drift.value, drift.threshold, drift.since) == (0.2, "max 0.05", world.now)
    assert world.status.reason == "Drifted"
    assert "error-rate" in world.status.message and "max 0.05" in world.status.message
    ready = world.status.condition("Ready")
    assert ready is not None and ready.status == "True", "kstatus still sees Current"
    stalled = world.status.condition("Stalled")
    assert stalled is not None and stalled.status == "False"
    measure(world, "fail", value=0.3, threshold="max 0.05")
    world.plan()
    assert world.status.drift == drift, "one drift, one event"
    measure(world, "pass", value=0.01, threshold="max 0.05")
    world.plan()
    assert world.status.drift is None and world.status.reason == "Available"
    assert [e.reason for e in world.events if "Drift" in e.reason] == [
        "Drifted",
        "DriftRecovered",
    ]
    assert next(e for e in world.events if e.reason == "Drifted").type == "Warning"


def test_dry_run_metrics_are_watched_but_never_set_drift() -> None:
    world = healthy(failureLimit=0)
    for _ in range(3):
        measure(world, "fail", name="shadow", value=0)
        world.plan()
    assert world.status.analysis["shadow"].failures == 3
    assert world.status.drift is None


def test_a_measurement_of_another_revision_does_not_count_as_drift() -> None:
    world = healthy(failureLimit=0)
    world.wait(30)
    world.verdicts["error-rate"] = MetricVerdict("fail", world.now, revision="other")
    world.plan()
    assert world.status.drift is None and "error-rate" not in world.status.analysis


def test_the_canary_failures_that_caused_a_rollback_are_no_drift_of_stable() -> None:
    world = deployed(make_spec(steps=[{"setWeight": 25}], analysis={**ANALYSIS, "failureLimit": 0}))
    world.change_spec(model={"version": "2"})
    world.plan()
    world.ready()
    canary = world.status.canary_revision
    world.wait(30)
    world.verdicts["error-rate"] = MetricVerdict("fail", world.now, value=1, revision=canary)
    world.plan()
    assert world.status.reason == "RolledBack"
    world.settle()
    assert world.status.drift is None


def test_a_rollout_clears_drift_and_the_new_stable_is_watched_afresh() -> None:
    world = healthy(failureLimit=0)
    measure(world, "fail", value=0.2, threshold="max 0.05")
    world.plan()
    assert world.status.drift is not None
    world.change_spec(model={"version": "2"})
    world.plan()
    assert world.status.canary_revision is not None
    assert world.status.drift is None and drifted(world) == "False"
