"""First deployment and changes that are not a rollout."""

from __future__ import annotations

import pytest
from rollout_world import World, deployed, make_spec

from modelrollout.rollout import EnsureRevision, RouteService

pytestmark = pytest.mark.unit


def test_first_deployment_goes_straight_to_healthy_once_ready() -> None:
    world = World(make_spec(replicas=3))
    first = world.plan()
    revision = world.revision
    assert EnsureRevision(revision, 3) in first.actions
    assert {RouteService(role, revision) for role in ("main", "canary", "preview")} <= set(
        first.actions
    )
    assert world.status.phase == "Progressing"
    assert world.status.reason == "Deploying"
    assert "0/3 replicas available" in world.status.message
    # Readiness arrives as a Deployment event; the only timer is the progress deadline.
    assert first.requeue_after == 600

    world.ready()
    world.plan()
    assert world.status.phase == "Healthy"
    assert world.status.stable_revision == revision
    assert world.status.stable_version == "1"
    assert [e.number for e in world.status.history] == [1]
    assert world.status.canary_revision is None
    assert "RolloutStarted" not in world.event_reasons()


def test_replicas_change_scales_without_a_rollout() -> None:
    world = deployed()
    revision = world.revision
    world.change_spec(replicas=6)
    result = world.plan()
    assert result.actions == (EnsureRevision(revision, 6),)
    assert world.status.phase == "Progressing"
    assert world.status.reason == "Scaling"
    world.ready()
    world.plan()
    assert world.status.phase == "Healthy"
    assert world.status.stable_revision == revision
    assert world.status.canary_revision is None
    assert len(world.status.history) == 1


def test_healthy_and_unchanged_world_plans_nothing_and_asks_for_no_timer() -> None:
    world = deployed()
    result = world.plan()
    assert result.actions == ()
    assert result.requeue_after is None
    assert result.events == ()


@pytest.mark.parametrize(
    "change",
    [
        {"model": {"version": "2"}},
        {"model": {"uri": "file:///models/2.skops"}},
        {"template": {"spec": {"containers": [{"name": "server", "image": "srv:2"}]}}},
    ],
)
def test_model_or_template_change_starts_a_rollout(change: dict[str, object]) -> None:
    world = deployed()
    old = world.revision
    world.change_spec(**change)
    assert world.revision != old
    world.plan()
    assert world.status.canary_revision == world.revision
    assert world.status.stable_revision == old
    assert world.status.current_step == 0
    assert world.event_reasons()[-1] == "RolloutStarted"


def test_stable_deployment_deleted_by_hand_is_recreated() -> None:
    world = deployed()
    del world.deployments[world.revision]
    result = world.plan()
    assert EnsureRevision(world.revision, 4) in result.actions


def test_zero_replicas_promotes_without_steps() -> None:
    world = deployed(make_spec(replicas=0))
    world.change_spec(model={"version": "2"})
    world.settle()
    assert world.status.phase == "Healthy"
    assert world.status.stable_version == "2"


def test_old_revision_kept_at_zero_and_not_recreated() -> None:
    world = deployed()
    old = world.revision
    world.change_spec(model={"version": "2"})
    world.plan()
    world.send("promote", full=True)
    world.settle()
    assert world.status.stable_version == "2"
    assert world.deployments[old].replicas == 0  # kept for undo
    assert world.plan().actions == ()
