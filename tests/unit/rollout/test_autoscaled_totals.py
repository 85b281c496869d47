"""An autoscaler changing spec.replicas at every turn of a rollout: each total is
split between stable and canary as the decision core plans it, the step neither
restarts nor moves, the stable never drops below its share, and no revision's
count turns back within one scaling event (pods start one reconcile after they
are asked for, as on a cluster)."""

from __future__ import annotations

import itertools
import math

import pytest
from rollout_world import World, deployed, make_spec

from modelrollout.rollout import AutoscalerState, DeleteAutoscaler, EnsureAutoscaler

pytestmark = pytest.mark.unit

STEPS = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]
# What an HPA might write while the rollout waits at a step, one total per event.
TOTALS = [
    pytest.param([8, 8, 6, 10, 3, 12, 4], id="up-down-up"),
    pytest.param([5, 6, 7, 8, 9, 10], id="one-at-a-time-up"),
    pytest.param([12, 2, 12, 1], id="extremes"),
]
RECONCILES_PER_EVENT = 4


def at_pause(step_weight: int) -> tuple[World, str, str]:
    world = deployed(make_spec(steps=STEPS))
    stable = world.revision
    world.change_spec(model={"version": "2"})
    world.settle()
    if step_weight == 50:
        world.send("promote")
        world.settle()
    assert world.status.phase == "Paused", world.status.message
    return world, stable, world.revision


def monotone(counts: list[int]) -> bool:
    rises = any(b > a for a, b in itertools.pairwise(counts))
    falls = any(b < a for a, b in itertools.pairwise(counts))
    return not (rises and falls)


@pytest.mark.parametrize("weight", [25, 50])
@pytest.mark.parametrize("totals", TOTALS)
def test_every_autoscaled_total_is_split_without_moving_the_step_or_turning_back(
    weight: int, totals: list[int]
) -> None:
    world, stable, canary = at_pause(weight)
    step, started = world.status.current_step, world.status.step_started_at
    for total in totals:
        before = world.replicas()
        world.change_spec(replicas=total)  # the HPA, through the scale subresource
        seen = {stable: [before[stable]], canary: [before[canary]]}
        for _ in range(RECONCILES_PER_EVENT):
            world.plan()
            counts = world.replicas()
            for revision in seen:
                seen[revision].append(counts[revision])
            canary_wanted = min(total, max(1, math.ceil(total * weight / 100)))
            assert counts[stable] >= total - canary_wanted, (total, counts)
            world.ready()  # what was asked for comes up by the next reconcile
        assert (world.status.current_step, world.status.step_started_at) == (step, started)
        assert world.status.phase == "Paused", "a scaling event does not end a pause"
        assert seen[canary][-1] == canary_wanted
        assert seen[stable][-1] == total - canary_wanted, "the split settles on the new total"
        for revision, counts in seen.items():
            assert monotone(counts), f"{revision} turned back within one event: {counts}"
        assert world.status.canary_weight == round(100 * canary_wanted / total)


def test_blue_green_follows_the_current_total_before_and_after_the_switch() -> None:
    blue_green = {"previewReplicas": 1, "scaleDownDelaySeconds": 30}
    world = deployed(make_spec(blue_green=blue_green))
    blue = world.revision
    world.change_spec(model={"version": "2"})
    world.settle()
    green = world.revision
    assert world.status.reason == "AwaitingPromotion"
    world.change_spec(replicas=7)  # `kubectl scale` during the preview
    world.settle()
    assert world.replicas() == {blue: 7, green: 1}, "blue serves: it follows; the preview stays"
    assert world.status.reason == "AwaitingPromotion"
    world.send("promote")
    world.settle()
    assert world.replicas() == {blue: 7, green: 7}, "green at the current total, then the switch"
    assert world.routes["main"] == green
    world.change_spec(replicas=5)
    world.settle()
    # Load fell after the switch: green follows; blue stays warm, as it was, for its delay.
    assert world.replicas() == {blue: 7, green: 5}
    world.wait(31)
    world.settle()
    assert world.replicas() == {blue: 0, green: 5}


def selected(world: World) -> str | None:
    """The revisions status.selector names (None: every pod of the ModelDeployment)."""
    selector = world.status.selector or ""
    assert selector.startswith("modelrollout.io/deployment=fraud"), selector
    _, _, revisions = selector.partition("modelrollout.io/revision in (")
    return revisions.rstrip(")") or None


def test_the_scale_subresource_counts_the_pods_that_answer_clients() -> None:
    world = deployed(make_spec(steps=STEPS))
    stable = world.revision
    assert (selected(world), world.status.replicas) == (stable, 4)
    world.change_spec(model={"version": "2"})
    world.settle()
    canary = world.revision
    assert selected(world) == ",".join(sorted((stable, canary)))
    assert world.status.replicas == 4, "3 stable + 1 canary"


def test_pods_that_serve_no_client_are_not_counted() -> None:
    shadowed = [{"shadow": {"percent": 50, "duration": "1m"}}, *STEPS]
    world = deployed(make_spec(steps=shadowed))
    stable = world.revision
    world.change_spec(model={"version": "2"})
    world.settle()
    assert world.status.reason == "Shadowing"
    assert (selected(world), world.status.replicas) == (stable, 4), "copies are not clients"

    world = deployed(make_spec(blue_green={"previewReplicas": 2, "scaleDownDelaySeconds": 30}))
    blue = world.revision
    world.change_spec(model={"version": "2"})
    world.settle()
    green = world.revision
    assert (selected(world), world.status.replicas) == (blue, 4), "the preview is not counted"
    world.send("promote")
    world.settle()
    assert (selected(world), world.status.replicas) == (green, 4), "nor blue, kept warm"


AUTOSCALING = {"minReplicas": 2, "maxReplicas": 10}


def test_spec_autoscaling_makes_the_hpa_replaces_it_when_changed_and_deletes_it_when_removed() -> (
    None
):
    world = World(make_spec(autoscaling=AUTOSCALING))
    world.autoscaler = "absent"
    result = world.settle()
    assert world.autoscaler == "current" and world.status.phase == "Healthy"
    assert not any(isinstance(a, EnsureAutoscaler) for a in result.actions), "made once"
    world.autoscaler = "stale"  # the observer saw an HPA made from another spec.autoscaling
    assert EnsureAutoscaler() in world.plan().actions
    world.change_spec(autoscaling=None)
    assert DeleteAutoscaler() in world.plan().actions
    assert world.autoscaler == "absent"


@pytest.mark.parametrize(
    ("state", "reason", "words"),
    [
        ("foreign", "AutoscalerConflict", "exists and is not this ModelDeployment's"),
        ("forbidden", "AutoscalerForbidden", "may not read HorizontalPodAutoscaler 'fraud'"),
    ],
)
def test_an_hpa_the_operator_cannot_own_stops_it_with_a_reason_and_a_recheck(
    state: AutoscalerState, reason: str, words: str
) -> None:
    world = deployed()
    stable = world.revision
    world.change_spec(model={"version": "2"}, autoscaling=AUTOSCALING)
    world.autoscaler = state
    result = world.plan()
    assert (world.status.phase, world.status.reason) == ("Degraded", reason)
    assert words in world.status.message and "what serves is left as it is" in world.status.message
    assert result.actions == () and result.requeue_after == 30
    assert world.replicas() == {stable: 4}
    world.autoscaler = "absent"  # the user deleted theirs: the next look goes on
    world.settle()
    assert world.autoscaler == "current" and world.status.canary_revision == world.revision
