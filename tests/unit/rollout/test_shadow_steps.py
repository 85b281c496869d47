"""Canary shadow steps as the decision core plans them: pods for the copies but no
client traffic, the model servers told to mirror, only shadow metrics judged,
and the mirror switched off when the step ends or the rollout is rolled back."""

from __future__ import annotations

from typing import Any

import pytest
from rollout_world import World, deployed, make_spec

from modelrollout.rollout import MetricVerdict, Mirror, SetMirror
from modelrollout.rollout.measurement import scope

pytestmark = pytest.mark.unit

ANALYSIS: dict[str, Any] = {
    "interval": "10s",
    "failureLimit": 0,
    "prometheus": {"address": "http://prometheus:9090"},
    "metrics": [
        {"name": "agreement", "query": "agree", "min": 0.97, "shadow": True},
        {"name": "error-rate", "query": "errors", "max": 0.05},
    ],
}
STEPS = [{"shadow": {"percent": 25, "duration": "60s"}}, {"setWeight": 50}, {"pause": {}}]


def shadowing() -> tuple[World, str]:
    world = deployed(make_spec(steps=STEPS, analysis=ANALYSIS))
    stable = world.revision
    world.change_spec(model={"version": "2"})
    world.settle()
    return world, stable


def measure(world: World, name: str, verdict: str) -> None:
    world.verdicts[name] = MetricVerdict(verdict, world.now)  # type: ignore[arg-type]


def test_the_canary_answers_copies_only_while_the_stable_keeps_every_client() -> None:
    world, stable = shadowing()
    canary = world.revision
    assert world.replicas() == {stable: 4, canary: 1}
    assert world.routes["main"] == stable, "no client request reaches the canary"
    assert world.mirror == Mirror(25, stable, canary)
    assert world.status.reason == "Shadowing" and "seen by no client" in world.status.message
    applies = scope(world.spec, world.status)
    assert applies is not None and applies.gating == ("agreement",), "only the comparison"


def test_a_passing_comparison_after_the_duration_goes_on_to_traffic() -> None:
    world, stable = shadowing()
    world.wait(61)
    measure(world, "agreement", "pass")
    result = world.plan()
    assert SetMirror(None) in result.actions, "the copies stop when the step ends"
    world.settle()
    assert world.status.current_step == 1 and world.mirror is None
    assert world.replicas() == {stable: 2, world.revision: 2}
    assert world.routes["main"] is None, "now the canary answers clients"
    applies = scope(world.spec, world.status)
    assert applies is not None and applies.gating == ("error-rate",)


def test_a_failing_comparison_rolls_back_and_stops_the_copies() -> None:
    world, stable = shadowing()
    world.wait(10)
    measure(world, "agreement", "fail")
    world.settle()
    assert world.status.reason == "RolledBack"
    assert world.mirror is None and world.routes["main"] == stable


def test_a_shadow_step_after_traffic_moved_is_an_invalid_spec() -> None:
    world = deployed()
    world.change_spec(
        model={"version": "2"},
        strategy={
            "canary": {"steps": [{"setWeight": 20}, {"shadow": {"percent": 10, "duration": "1m"}}]}
        },
    )
    world.plan()
    assert world.status.reason == "InvalidSpec"
    assert "steps[1].shadow: a shadow step must come before any setWeight" in world.status.message


BLUE_GREEN = {
    "previewReplicas": 1,
    "autoPromotionSeconds": 0,
    "shadow": {"percent": 50, "duration": "60s"},
}


def previewing_in_shadow() -> tuple[World, str]:
    world = deployed(make_spec(blue_green=BLUE_GREEN, analysis=ANALYSIS))
    stable = world.revision
    world.change_spec(model={"version": "2"})
    world.settle()
    return world, stable


def test_blue_green_shadows_the_ready_preview_before_it_can_be_promoted() -> None:
    world, blue = previewing_in_shadow()
    green = world.revision
    assert world.status.stage == "Shadowing" and world.status.reason == "Shadowing"
    # Pods for half the stable's requests, more than previewReplicas: 1.
    assert world.replicas() == {blue: 4, green: 2}
    assert world.routes["main"] == blue, "every client request stays on the old revision"
    assert world.mirror == Mirror(50, blue, green)
    applies = scope(world.spec, world.status)
    assert applies is not None and applies.gating == ("agreement",)
    world.wait(30)
    measure(world, "agreement", "pass")
    world.settle()
    assert world.status.stage == "Shadowing", "the duration is not over: auto-promotion waits"


def test_blue_green_goes_on_to_its_preview_and_switch_once_the_comparison_passes() -> None:
    world, blue = previewing_in_shadow()
    world.wait(61)
    measure(world, "agreement", "pass")
    result = world.plan()
    assert SetMirror(None) in result.actions, "the copies stop with the phase"
    assert "ShadowPassed" in [event.reason for event in result.events]
    world.settle()
    assert world.mirror is None and world.routes["main"] == blue, "a preview, not yet a switch"
    assert world.status.stage != "Shadowing"
    applies = scope(world.spec, world.status)
    assert applies is not None and applies.gating == ("error-rate",)


def test_blue_green_rolls_back_on_a_failing_comparison_before_any_client_saw_it() -> None:
    world, blue = previewing_in_shadow()
    world.wait(10)
    measure(world, "agreement", "fail")
    world.settle()
    assert world.status.reason == "RolledBack"
    assert world.mirror is None and world.routes["main"] == blue
    assert not any(e.revision != blue for e in world.status.history[-1:]), "green never promoted"
