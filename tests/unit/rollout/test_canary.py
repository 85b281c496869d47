"""The stepwise canary: weights by replica counts, readiness gates, pauses, completion."""

from __future__ import annotations

import pytest
from rollout_world import World, deployed, make_spec

from modelrollout.rollout import RouteService, ScaleRevision

pytestmark = pytest.mark.unit


def started(**spec_options: object) -> tuple[World, str, str]:
    world = deployed(make_spec(**spec_options))  # type: ignore[arg-type]
    stable = world.revision
    world.change_spec(model={"version": "2"})
    return world, stable, world.revision


def test_weight_step_scales_canary_first_and_stable_only_after_it_is_available() -> None:
    world, stable, canary = started()
    world.plan()
    assert world.replicas() == {stable: 4, canary: 1}
    assert world.routes["main"] is None  # one Service spans both revisions
    assert world.routes["canary"] == canary
    assert world.status.reason == "WaitingForCanary"
    assert world.status.current_step == 0
    assert world.status.canary_weight == 0

    world.ready(canary)
    world.plan()
    assert world.replicas() == {stable: 3, canary: 1}
    assert world.status.current_step == 1  # the weight step ended, the pause began


@pytest.mark.parametrize(
    ("replicas", "steps", "expected_canary"),
    [
        (4, [{"setWeight": 25}, {"pause": {}}], 1),
        (10, [{"setWeight": 30}, {"pause": {}}], 3),
        (3, [{"setWeight": 10}, {"pause": {}}], 1),
        (2, [{"setWeight": 50}, {"pause": {}}], 1),
        (5, [{"setWeight": 0}, {"pause": {}}], 0),
    ],
)
def test_replica_counts_and_reported_weight_per_step(
    replicas: int, steps: list[dict[str, object]], expected_canary: int
) -> None:
    world, stable, canary = started(replicas=replicas, steps=steps)
    world.settle()
    assert world.status.reason == "AwaitingPromotion"
    assert world.deployments.get(canary) is None or (
        world.deployments[canary].replicas == expected_canary
    )
    assert world.deployments[stable].replicas == replicas - expected_canary
    world.plan()
    expected_weight = round(100 * expected_canary / replicas)
    assert world.status.canary_weight == expected_weight


def test_timed_pause_waits_for_its_deadline_and_asks_to_be_woken() -> None:
    world, _, canary = started()
    world.settle()
    assert world.status.reason == "PauseStep"
    assert "until 2025-06-01T12:01:00Z" in world.status.message
    world.wait(45)
    result = world.plan()
    assert result.requeue_after == pytest.approx(15)
    assert world.status.current_step == 1
    world.wait(15)
    world.settle()
    assert world.status.current_step == 3
    assert world.status.phase == "Paused"
    assert world.deployments[canary].replicas == 2


def test_restart_resumes_the_same_step_with_the_same_deadline() -> None:
    world, _stable, _canary = started()
    world.settle()
    world.wait(30)
    # A new operator process has only the status it reads back from the API server.
    from modelrollout.api import dump_status, parse_status

    restored = World(
        world.spec,
        status=parse_status(dump_status(world.status)),
        deployments=dict(world.deployments),
        routes=dict(world.routes),
        generation=world.generation,
        now=world.now,
    )
    result = restored.plan()
    assert result.actions == ()
    assert restored.status.current_step == 1
    assert result.requeue_after == pytest.approx(30)
    assert restored.status == world.status


def test_indefinite_pause_is_released_by_promote_and_completion_switches_traffic() -> None:
    world, stable, canary = started()
    world.settle()
    world.wait(60)
    world.settle()
    assert world.status.phase == "Paused"
    assert world.status.reason == "AwaitingPromotion"
    world.send("promote")
    world.settle()
    assert world.status.phase == "Healthy"
    assert world.status.stable_revision == canary
    assert world.status.stable_version == "2"
    assert world.status.canary_revision is None
    assert world.status.canary_weight == 0
    assert world.routes == {"main": canary, "canary": canary, "preview": canary}
    assert world.replicas() == {stable: 0, canary: 4}
    assert [e.version for e in world.status.history] == ["2", "1"]
    assert world.event_reasons()[-1] == "Promoted"


def test_promote_full_skips_every_remaining_step() -> None:
    world, _stable, canary = started()
    world.plan()
    world.send("promote", full=True)
    world.settle()
    assert world.status.phase == "Healthy"
    assert world.status.stable_revision == canary


def test_final_switch_pins_main_before_scaling_stable_down() -> None:
    world, stable, canary = started(steps=[{"setWeight": 50}])
    world.plan()
    world.ready()
    world.plan()  # step done: promoting, canary to 4
    world.ready()
    result = world.plan()
    route = result.actions.index(RouteService("main", canary))
    assert any(isinstance(a, ScaleRevision) and a.revision == stable for a in result.actions)
    scale_down = next(
        i
        for i, a in enumerate(result.actions)
        if isinstance(a, ScaleRevision) and a.revision == stable
    )
    assert route < scale_down


def test_newer_revision_mid_rollout_drops_the_in_flight_canary() -> None:
    world, stable, first = started()
    world.settle()
    world.change_spec(model={"version": "3"})
    second = world.revision
    world.plan()
    assert world.status.canary_revision == second
    assert world.status.current_step == 0
    assert world.deployments[first].replicas == 0
    assert world.deployments[stable].replicas == 4  # stable back to full while the new one starts
    assert "RolloutSuperseded" in world.event_reasons()
    world.settle()
    assert first not in world.deployments  # never served, so not kept
    assert world.status.canary_revision == second


def test_spec_reverted_to_stable_mid_rollout_cancels_it() -> None:
    world, stable, canary = started()
    world.settle()
    world.change_spec(model={"version": "1"})
    world.settle()
    assert world.status.phase == "Healthy"
    assert world.status.stable_revision == stable
    assert world.routes["main"] == stable
    assert canary not in world.deployments
