"""History and retention, kstatus conditions, and specs only the operator can judge."""

from __future__ import annotations

import pytest
from rollout_world import World, deployed, make_spec

from modelrollout.api import dump_status
from modelrollout.rollout import invalid_spec

pytestmark = pytest.mark.unit


def roll_out(world: World, version: str) -> None:
    world.change_spec(model={"version": version})
    world.plan()
    world.send("promote", full=True)
    world.settle()
    assert world.status.stable_version == version


def test_history_is_newest_first_capped_and_old_deployments_deleted() -> None:
    world = deployed(make_spec(revisionHistoryLimit=2))
    revisions = [world.revision]
    for version in ("2", "3", "4"):
        roll_out(world, version)
        revisions.append(world.revision)
    assert [e.version for e in world.status.history] == ["4", "3", "2"]
    assert [e.number for e in world.status.history] == [4, 3, 2]
    assert revisions[0] not in world.deployments  # beyond the limit
    assert {r: world.deployments[r].replicas for r in revisions[1:]} == {
        revisions[1]: 0,
        revisions[2]: 0,
        revisions[3]: 4,
    }


def condition_statuses(world: World) -> dict[str, str]:
    return {c.type: c.status for c in world.status.conditions}


@pytest.mark.parametrize(
    ("situation", "true_conditions"),
    [
        ("healthy", {"Ready"}),
        ("progressing", {"Progressing", "Reconciling"}),
        ("paused", {"Paused", "Reconciling"}),
        ("aborted", {"Degraded", "Stalled"}),
    ],
)
def test_conditions_follow_the_phase(situation: str, true_conditions: set[str]) -> None:
    world = deployed()
    if situation != "healthy":
        world.change_spec(model={"version": "2"})
        world.plan()
    if situation == "paused":
        world.send("pause")
        world.plan()
    if situation == "aborted":
        world.send("abort")
        world.plan()
    statuses = condition_statuses(world)
    assert {t for t, s in statuses.items() if s == "True"} == true_conditions
    assert all(c.observed_generation == world.generation for c in world.status.conditions)
    assert world.status.observed_generation == world.generation


def test_last_transition_time_moves_only_when_a_condition_flips() -> None:
    world = deployed()
    ready = world.status.condition("Ready")
    assert ready is not None and ready.status == "True"
    world.wait(100)
    world.plan()
    assert world.status.condition("Ready") == ready  # same status: same time

    world.change_spec(replicas=5)
    world.plan()  # scaling: Ready flips to False
    world.ready()
    world.wait(100)
    world.plan()  # and back to True
    flipped_back = world.status.condition("Ready")
    assert flipped_back is not None and flipped_back.status == "True"
    assert flipped_back.last_transition_time == world.now != ready.last_transition_time


@pytest.mark.parametrize(
    ("change", "fix"),
    [
        (
            {
                "template": {
                    "metadata": {"labels": {"modelrollout.io/revision": "x"}},
                    "spec": {"containers": [{"name": "s", "image": "i"}]},
                }
            },
            "remove modelrollout.io/revision",
        ),
        (
            {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "s",
                                "image": "i",
                                "env": [{"name": "MODEL_VERSION", "value": "9"}],
                            }
                        ]
                    }
                }
            },
            "remove MODEL_VERSION",
        ),
        (
            {
                "analysis": {
                    "prometheus": {"address": "http://p:9090"},
                    "metrics": [{"name": "e", "query": "x{v='{{ modelVersion }}'}", "max": 1}],
                }
            },
            "unknown variable(s) modelVersion",
        ),
    ],
)
def test_specs_only_the_operator_can_judge(change: dict[str, object], fix: str) -> None:
    world = deployed()
    world.change_spec(**change)
    world.plan()
    assert world.status.reason == "InvalidSpec"
    assert fix in world.status.message


def test_unparsable_spec_plan_keeps_status_and_reports() -> None:
    world = deployed()
    result = invalid_spec(
        world.status, 7, "spec.replicas: Input should be a valid integer", world.now
    )
    assert result.actions == ()
    assert result.new_status.phase == "Degraded"
    assert result.new_status.observed_generation == 7
    assert result.new_status.stable_revision == world.status.stable_revision
    assert "spec.replicas" in dump_status(result.new_status)["message"]


def test_each_new_reason_is_announced_once_and_carried_by_every_condition() -> None:
    world = deployed()
    world.change_spec(model={"version": "2"})
    announced = []
    for _ in range(12):
        result = world.plan()
        if result.reason_changed:
            announced.append(result.reason.reason)
        for condition in world.status.conditions:
            if condition.type != "Drifted":
                assert (condition.reason, condition.message) == (
                    result.reason.reason,
                    result.reason.message,
                )
        world.ready()
        world.wait(30)
    # Steps 1-4 of the default canary: weight 25%, a 60 s pause, weight 50%, `promote`.
    assert announced == ["WaitingForCanary", "PauseStep", "WaitingForCanary", "AwaitingPromotion"]


def test_invalid_spec_is_announced_and_only_once() -> None:
    world = deployed()
    world.change_spec(
        analysis={
            "prometheus": {"address": "http://p:9090"},
            "metrics": [{"name": "e", "query": "x{v='{{ modelVersion }}'}", "max": 1}],
        }
    )
    assert world.plan().reason_changed
    assert not world.plan().reason_changed
