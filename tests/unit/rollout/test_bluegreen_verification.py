"""Blue/green with analysis: the switch is verified on all traffic while blue stays up."""

from __future__ import annotations

from typing import Any

import pytest
from rollout_world import World, deployed, make_spec

from modelrollout.api import BlueGreenStage
from modelrollout.rollout import MetricVerdict
from modelrollout.rollout.stages import LEGACY_STEP

pytestmark = pytest.mark.unit

ANALYSIS: dict[str, Any] = {
    "interval": "10s",
    "failureLimit": 0,
    "prometheus": {"address": "http://prometheus:9090"},
    "metrics": [
        {"name": "error-rate", "query": "errors", "max": 0.05},
        {"name": "accuracy", "query": "acc", "compareTo": "stable", "maxDecrease": 0.02},
    ],
}
BLUE_GREEN = {"previewReplicas": 1, "autoPromotionSeconds": 0, "scaleDownDelaySeconds": 60}


def measure(world: World, verdict: str, name: str = "error-rate", **extra: Any) -> None:
    world.wait(10)
    world.verdicts[name] = MetricVerdict(verdict, world.now, **extra)  # type: ignore[arg-type]


def switched(**analysis: Any) -> tuple[World, str, str]:
    """A blue/green rollout whose preview passed and whose main Service just switched."""
    world = deployed(make_spec(blue_green=BLUE_GREEN, analysis={**ANALYSIS, **analysis}))
    blue = world.revision
    world.change_spec(model={"version": "2"})
    world.settle()
    assert world.status.reason == "WaitingForAnalysis"
    measure(world, "pass")
    measure(world, "pass", name="accuracy")
    world.settle()
    assert world.status.current_step == LEGACY_STEP[BlueGreenStage.VERIFYING], world.status.message
    assert world.status.stage == BlueGreenStage.VERIFYING
    return world, blue, world.revision


def test_after_the_switch_green_takes_all_traffic_and_blue_stays_up_at_full_size() -> None:
    world, blue, green = switched()
    assert world.routes["main"] == green
    assert world.replicas() == {blue: 4, green: 4}
    assert (world.status.phase, world.status.reason) == ("Progressing", "Verifying")
    assert world.status.canary_weight == 100
    assert world.status.stable_revision == blue, "not promoted before verification"
    assert "Switched" in world.event_reasons()
    assert "Promoted" not in world.event_reasons()


def test_a_failure_after_the_switch_sends_traffic_back_to_blue_at_once() -> None:
    world, blue, green = switched()
    measure(world, "fail", value=0.4, threshold="max 0.05")
    result = world.plan()
    assert world.routes["main"] == blue
    assert world.replicas()[blue] == 4, "blue was never scaled down"
    assert world.replicas()[green] == 0
    assert (world.status.phase, world.status.reason) == ("Degraded", "RolledBack")
    assert world.status.stable_revision == blue
    rollback = world.status.last_rollback
    assert rollback is not None
    assert (rollback.revision, rollback.metric, rollback.value) == (green, "error-rate", 0.4)
    # Traffic moves back before green is scaled away.
    touches = [getattr(action, "role", None) or action.revision for action in result.actions]
    assert touches.index("main") < touches.index(green)


def test_verification_completes_after_the_delay_with_a_pass_from_after_the_switch() -> None:
    world, blue, green = switched()
    measure(world, "pass")
    world.plan()
    assert world.status.reason == "Verifying", "the delay has not passed yet"
    world.wait(50)
    world.plan()
    assert world.status.phase == "Healthy"
    assert world.status.stable_revision == green
    assert world.replicas() == {blue: 0, green: 4}
    assert world.status.pending_scale_downs == ()


def test_without_a_measurement_after_the_switch_blue_is_kept() -> None:
    world, blue, _green = switched()
    world.wait(600)
    world.plan()
    assert world.status.reason == "WaitingForAnalysis"
    assert world.replicas()[blue] == 4


def test_compare_to_metrics_are_not_judged_after_the_switch() -> None:
    world, _blue, green = switched()
    world.wait(60)
    measure(world, "pass")
    measure(world, "nodata", name="accuracy")  # blue has no traffic left to compare with
    world.plan()
    assert world.status.stable_revision == green


def test_query_errors_after_the_switch_pause_without_moving_traffic() -> None:
    world, _blue, green = switched()
    world.wait(60)  # past the scale-down delay: now the verification decides
    measure(world, "error", message="connection refused")
    world.plan()
    assert (world.status.phase, world.status.reason) == ("Paused", "AnalysisUnavailable")
    assert world.routes["main"] == green


def test_promote_ends_the_verification_and_scales_blue_down() -> None:
    world, blue, green = switched()
    world.send("promote")
    world.plan()
    assert world.status.stable_revision == green
    assert world.replicas()[blue] == 0


def test_abort_after_the_switch_returns_traffic_to_blue() -> None:
    world, blue, _green = switched()
    world.send("abort")
    world.plan()
    assert world.routes["main"] == blue
    assert (world.status.phase, world.status.reason) == ("Degraded", "Aborted")


def test_a_restart_resumes_the_verification_with_the_same_deadline() -> None:
    world, _blue, _green = switched()
    started = world.status.step_started_at
    restarted = World(world.spec, status=world.status, deployments=dict(world.deployments))
    restarted.routes = dict(world.routes)
    restarted.now = world.now
    restarted.plan()
    assert restarted.status.current_step == LEGACY_STEP[BlueGreenStage.VERIFYING]
    assert restarted.status.step_started_at == started
    assert restarted.events == []


def test_only_compare_to_metrics_means_no_verification_stage() -> None:
    accuracy = ANALYSIS["metrics"][1]
    world = deployed(make_spec(blue_green=BLUE_GREEN, analysis={**ANALYSIS, "metrics": [accuracy]}))
    blue = world.revision
    world.change_spec(model={"version": "2"})
    world.settle()
    measure(world, "pass", name="accuracy")
    world.settle()
    assert world.status.stable_revision != blue
    assert world.status.pending_scale_downs[0].revision == blue  # the delay, as without analysis
