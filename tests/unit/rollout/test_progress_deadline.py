"""spec.progressDeadlineSeconds: pods of a new revision that never get ready stop
the rollout at the deadline, naming what the pods report."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from rollout_world import T0, World, deployed, make_spec

from modelrollout.api import (
    BlueGreenStage,
    ModelDeploymentStatus,
    SpecError,
    dump_status,
    parse_spec,
    parse_status,
)
from modelrollout.rollout import MetricVerdict, PodCause, PodsObservation
from modelrollout.rollout.stages import LEGACY_STEP

pytestmark = pytest.mark.unit

DEADLINE = 600
BLUE_GREEN = {"previewReplicas": 1, "autoPromotionSeconds": 120, "scaleDownDelaySeconds": 30}
PULL = PodCause("waiting", "ImagePullBackOff", 'Back-off pulling image "srv:2"', "server")


def rolling(**extra: Any) -> tuple[World, str, str]:
    """A Healthy world (4 replicas) whose spec now asks for version 2; planned once,
    so the new revision's Deployment exists with no pod ready."""
    world = deployed(make_spec(**extra))
    stable = world.revision
    world.change_spec(model={"version": "2"})
    world.plan()
    return world, stable, world.revision


def pods_say(
    world: World, revision: str, cause: PodCause | None, ready: int = 0, not_ready: int = 1
) -> None:
    world.deployments[revision] = replace(
        world.deployments[revision], pods=PodsObservation(ready, not_ready, cause)
    )


def make_available(world: World, revision: str, count: int) -> None:
    world.deployments[revision] = replace(
        world.deployments[revision], ready_replicas=count, available_replicas=count
    )


# Each place a rollout waits for the new revision's pods: how to get there from a
# started rollout, the strategy, and how many new pods that wait asks for.
def _canary_step(world: World) -> None:
    pass


def _canary_promoting(world: World) -> None:
    world.send("promote", full=True)
    world.plan()


def _preview(world: World) -> None:
    pass


def _scaling_up(world: World) -> None:
    world.ready()
    world.plan()  # preview ready
    world.wait(120)
    world.plan()  # auto-promotion: scaled to full before the switch


WAITS = {
    "canary setWeight step": ({}, _canary_step, 1, "WaitingForCanary"),
    "canary promoting to full size": ({}, _canary_promoting, 4, "Promoting"),
    "blue/green preview": ({"blue_green": BLUE_GREEN}, _preview, 1, "PreviewStarting"),
    "blue/green scale-up before the switch": (
        {"blue_green": BLUE_GREEN},
        _scaling_up,
        4,
        "ScalingUp",
    ),
}


def at_wait(name: str, **extra: Any) -> tuple[World, str, str, int]:
    options, get_there, wanted, _reason = WAITS[name]
    world, stable, new = rolling(**options, **extra)
    get_there(world)
    return world, stable, new, wanted


@pytest.mark.parametrize("name", WAITS)
def test_before_the_deadline_the_rollout_waits_and_says_until_when(name: str) -> None:
    world, stable, new, wanted = at_wait(name)
    started = world.now
    pods_say(world, new, PULL, not_ready=wanted)
    world.wait(DEADLINE - 1)
    result = world.plan()
    assert world.status.phase == "Progressing"
    assert world.status.reason == WAITS[name][3]
    assert world.status.readiness_wait is not None
    assert world.status.readiness_wait.since == started
    assert 'not ready: ImagePullBackOff: Back-off pulling image "srv:2"' in world.status.message
    assert "progress deadline 2025-06-01T12:1" in world.status.message
    assert result.requeue_after == pytest.approx(1)  # planned again at the deadline
    assert world.replicas()[stable] == 4
    assert world.replicas()[new] == wanted


@pytest.mark.parametrize("name", WAITS)
def test_pods_ready_just_before_the_deadline_let_the_rollout_go_on(name: str) -> None:
    world, _stable, new, wanted = at_wait(name)
    pods_say(world, new, PULL, not_ready=wanted)
    world.wait(DEADLINE - 1)
    world.plan()
    make_available(world, new, wanted)
    world.plan()
    world.wait(5)
    world.plan()
    assert world.status.phase != "Degraded"
    assert world.status.reason != "ProgressDeadlineExceeded"
    assert world.status.canary_revision == new or world.status.stable_revision == new
    assert "ProgressDeadlineExceeded" not in world.event_reasons()


@pytest.mark.parametrize(
    ("cause", "named"),
    [
        (PULL, 'ImagePullBackOff: Back-off pulling image "srv:2"'),
        (
            PodCause("waiting", "ErrImagePull", "rpc error: not found", "server"),
            "ErrImagePull: rpc error: not found",
        ),
        (
            PodCause(
                "waiting",
                "CrashLoopBackOff",
                container="server",
                exit_code=1,
                last_reason="Error",
                last_message="FileNotFoundError: /models/2.skops",
            ),
            "CrashLoopBackOff: container server exited with code 1 (Error): "
            "FileNotFoundError: /models/2.skops",
        ),
        (
            PodCause(
                "waiting",
                "CreateContainerConfigError",
                'secret "db" not found',
                "server",
            ),
            'CreateContainerConfigError: secret "db" not found',
        ),
        (
            PodCause("terminated", "OOMKilled", container="server", exit_code=137),
            "container server exited with code 137 (OOMKilled)",
        ),
        (
            PodCause("readiness", container="server"),
            "readiness probe not passing (container server)",
        ),
        (
            PodCause(
                "unschedulable",
                "Unschedulable",
                "0/3 nodes are available: 3 Insufficient memory.",
            ),
            "pods unschedulable: 0/3 nodes are available: 3 Insufficient memory.",
        ),
        (
            PodCause("not-created", "FailedCreate", 'pods "x" is forbidden: exceeded quota'),
            'FailedCreate: pods "x" is forbidden: exceeded quota',
        ),
        (None, "the pods report no cause"),
    ],
)
def test_at_the_deadline_the_rollout_stops_naming_the_cause(
    cause: PodCause | None, named: str
) -> None:
    world, stable, new = rolling()
    pods_say(world, new, cause)
    world.wait(DEADLINE)
    world.plan()
    assert world.status.phase == "Degraded"
    assert world.status.reason == "ProgressDeadlineExceeded"
    expected = f"progress deadline (10m) exceeded with 0/1 pods available: {named}"
    assert world.status.message.startswith(expected)
    rollback = world.status.last_rollback
    assert rollback is not None
    assert (rollback.reason, rollback.revision, rollback.version) == (
        "ProgressDeadlineExceeded",
        new,
        "2",
    )
    assert rollback.message == expected
    assert rollback.metric is None
    condition = world.status.condition("Degraded")
    assert condition is not None and condition.status == "True"
    assert condition.reason == "ProgressDeadlineExceeded"
    assert world.status.stable_revision == stable


@pytest.mark.parametrize("name", WAITS)
def test_automatic_rollback_goes_back_to_stable(name: str) -> None:
    world, stable, new, wanted = at_wait(name)
    pods_say(world, new, PULL, not_ready=wanted)
    world.wait(DEADLINE)
    result = world.plan()
    assert world.replicas() == {stable: 4, new: 0}
    assert world.routes == {"main": stable, "canary": stable, "preview": stable}
    assert world.status.canary_revision is None
    assert world.status.readiness_wait is None
    assert world.status.hold is not None
    assert (world.status.hold.revision, world.status.hold.reason) == (
        new,
        "ProgressDeadlineExceeded",
    )
    (event,) = [e for e in result.events if e.reason == "ProgressDeadlineExceeded"]
    assert event.type == "Warning"
    assert event.message.startswith(f"revision {new} (version 2): progress deadline (10m)")
    assert "serving stable revision" in world.status.message
    assert "`retry`" in world.status.message
    # Held: planning again changes nothing; `retry` rolls it out again, with a new wait.
    world.wait(3600)
    assert world.plan().actions == ()
    world.send("retry")
    world.plan()
    assert world.status.canary_revision == new
    assert world.status.phase == "Progressing"
    assert world.status.readiness_wait is not None
    assert world.status.readiness_wait.since == world.now


@pytest.mark.parametrize("name", WAITS)
def test_without_automatic_rollback_it_stays_degraded_on_stable_until_the_user_acts(
    name: str,
) -> None:
    world, stable, new, wanted = at_wait(name, rollback={"automatic": False})
    pods_say(world, new, PULL, not_ready=wanted)
    world.wait(DEADLINE)
    world.plan()
    assert world.status.phase == "Degraded"
    assert world.status.reason == "ProgressDeadlineExceeded"
    assert "rollback.automatic is off" in world.status.message
    assert "ImagePullBackOff" in world.status.message
    assert world.status.canary_revision == new  # the rollout is held, not ended
    assert world.status.last_rollback is None
    assert world.replicas() == {stable: 4, new: wanted}
    assert world.routes["main"] == stable
    # The pods recover later: it still holds (on stable), with the cause it stopped for.
    make_available(world, new, wanted)
    pods_say(world, new, None, ready=wanted, not_ready=0)
    world.wait(3600)
    world.plan()
    assert world.status.phase == "Degraded"
    assert "ImagePullBackOff" in world.status.message
    assert world.routes["main"] == stable
    assert world.status.canary_weight == 0
    assert world.replicas()[stable] == 4
    # `abort` rolls back (and holds the revision until retry or a new spec).
    world.send("abort")
    world.plan()
    assert world.replicas() == {stable: 4, new: 0}
    assert world.status.hold is not None and world.status.hold.reason == "Aborted"
    assert world.status.readiness_wait is None


def test_without_automatic_rollback_promote_goes_on_and_the_deadline_starts_over() -> None:
    world, _stable, new = rolling(rollback={"automatic": False})
    pods_say(world, new, PULL)
    world.wait(DEADLINE)
    world.plan()
    assert world.status.reason == "ProgressDeadlineExceeded"
    world.send("promote")
    world.plan()
    assert world.status.phase == "Progressing"
    assert world.status.current_step == 1
    wait = world.status.readiness_wait
    assert wait is not None
    assert wait.since == world.now
    assert wait.exceeded_at is None


@pytest.mark.parametrize("name", WAITS)
def test_promote_is_accepted_at_every_held_wait_even_the_last_step(name: str) -> None:
    world, _stable, new, wanted = at_wait(name, rollback={"automatic": False})
    step = world.status.current_step
    pods_say(world, new, PULL, not_ready=wanted)
    world.wait(DEADLINE)
    world.plan()
    assert world.status.reason == "ProgressDeadlineExceeded"
    command = world.send("promote")
    world.plan()
    assert world.status.last_command is not None
    assert (world.status.last_command.id, world.status.last_command.result) == (
        command,
        "Applied",
    )
    assert world.status.phase == "Progressing"
    assert (world.status.current_step or 0) >= (step or 0)
    wait = world.status.readiness_wait
    assert wait is not None and wait.since == world.now and wait.exceeded_at is None


def test_an_undo_that_misses_its_deadline_offers_abort() -> None:
    world = deployed(make_spec(rollback={"automatic": False}))
    first = world.revision
    world.change_spec(model={"version": "2"})
    world.settle()
    world.wait(60)
    world.settle()
    world.send("promote")
    world.settle()
    assert world.status.stable_version == "2"
    # Revision 1's pods no longer start (say its image was deleted from the registry).
    world.send("undo")
    world.plan()
    assert world.status.rollout_source == "Undo"
    assert world.status.canary_revision == first
    pods_say(world, first, PULL, not_ready=4)
    world.wait(DEADLINE)
    world.plan()
    assert world.status.reason == "ProgressDeadlineExceeded"
    assert world.status.message.endswith("`abort` to stop the undo")


def test_a_newer_spec_ends_a_held_deadline() -> None:
    world, _stable, new = rolling(rollback={"automatic": False})
    pods_say(world, new, PULL)
    world.wait(DEADLINE)
    world.plan()
    world.change_spec(model={"version": "3"})
    world.plan()
    assert world.status.canary_revision == world.revision != new
    assert world.status.phase == "Progressing"
    assert world.status.readiness_wait is not None
    assert world.status.readiness_wait.revision == world.revision


def test_time_paused_by_the_user_does_not_count() -> None:
    world, _stable, new = rolling()
    started = world.now
    pods_say(world, new, PULL)
    world.wait(300)
    world.send("pause")
    world.plan()
    world.wait(3600)  # far past the deadline, but paused
    result = world.plan()
    assert world.status.phase == "Paused"
    assert world.status.reason == "PausedByUser"
    assert result.requeue_after is None  # the clock is frozen: nothing to wake for
    world.send("resume")
    world.plan()
    wait = world.status.readiness_wait
    assert wait is not None
    assert wait.since == started + timedelta(seconds=3600)  # moved on by the pause
    world.wait(DEADLINE - 300 - 1)
    world.plan()
    assert world.status.phase == "Progressing"
    world.wait(1)
    world.plan()
    assert world.status.reason == "ProgressDeadlineExceeded"


def test_a_pod_that_fails_later_in_a_step_gets_the_whole_deadline_from_then() -> None:
    world, _stable, new = rolling()
    make_available(world, new, 1)
    world.plan()  # step 1 done; step 2: pause 60s
    world.wait(30)
    make_available(world, new, 0)  # the canary pod crashes during the pause
    pods_say(world, new, PodCause("waiting", "CrashLoopBackOff", container="server", exit_code=2))
    world.plan()
    wait = world.status.readiness_wait
    assert wait is not None and wait.since == world.now
    world.wait(DEADLINE - 1)
    world.plan()
    assert world.status.phase == "Progressing"
    world.wait(1)
    world.plan()
    assert world.status.reason == "ProgressDeadlineExceeded"
    assert "CrashLoopBackOff: container server exited with code 2" in world.status.message


def test_first_revision_that_never_gets_ready_is_degraded_with_nothing_to_roll_back_to() -> None:
    world = World(make_spec(replicas=2))
    revision = world.revision
    first = world.plan()
    assert first.requeue_after == DEADLINE
    pods_say(world, revision, PodCause("readiness", container="server"), not_ready=2)
    world.wait(DEADLINE)
    result = world.plan()
    assert world.status.phase == "Degraded"
    assert world.status.reason == "ProgressDeadlineExceeded"
    assert world.status.message == (
        f"revision {revision} (version 1): progress deadline (10m) exceeded with 0/2 pods "
        "available: readiness probe not passing (container server); no stable revision "
        "to roll back to: fix the spec, or the pods"
    )
    assert world.replicas() == {revision: 2}  # nothing else to serve: it keeps trying
    assert world.routes["main"] == revision
    assert result.requeue_after is None
    assert world.status.last_rollback is None
    # Ready after all: deployed, and the wait is over.
    world.ready()
    world.plan()
    assert world.status.phase == "Healthy"
    assert world.status.stable_revision == revision
    assert world.status.readiness_wait is None


def test_first_revision_replaced_by_a_fixed_spec_gets_a_fresh_deadline() -> None:
    world = World(make_spec(replicas=2))
    world.plan()
    world.wait(DEADLINE)
    world.plan()
    assert world.status.reason == "ProgressDeadlineExceeded"
    world.change_spec(template={"spec": {"containers": [{"name": "server", "image": "srv:ok"}]}})
    world.plan()
    assert world.status.phase == "Progressing"
    assert world.status.reason == "Deploying"
    wait = world.status.readiness_wait
    assert wait is not None and wait.revision == world.revision and wait.since == world.now


def _serving(world: World, stable: str, new: str) -> int:
    """Available pods behind the main Service."""
    main = world.routes["main"]
    stable_pods = world.deployments[stable].available_replicas
    new_pods = world.deployments[new].available_replicas if new in world.deployments else 0
    return stable_pods + new_pods if main is None else stable_pods if main == stable else new_pods


@pytest.mark.parametrize(
    ("options", "stuck_at_step_3"),
    [
        ({}, False),
        ({"rollback": {"automatic": False}}, False),
        ({"rollback": {"automatic": False}}, True),
        ({"blue_green": BLUE_GREEN}, False),
        ({"blue_green": BLUE_GREEN, "rollback": {"automatic": False}}, False),
    ],
    ids=[
        "canary step 1, automatic",
        "canary step 1, held",
        "canary step 3 with 1 of 2 available, held",
        "blue/green preview, automatic",
        "blue/green preview, held",
    ],
)
def test_stable_never_loses_ready_capacity_while_the_new_pods_are_not_ready(
    options: dict[str, Any], stuck_at_step_3: bool
) -> None:
    """Every plan from the start of the rollout to past its deadline: stable is asked
    for no fewer pods than `replicas` minus the new pods available, and the main
    Service always has `replicas` available pods behind it (no pod crashes here)."""
    world, stable, new = rolling(**options)
    available = 0
    if stuck_at_step_3:
        make_available(world, new, 1)
        world.plan()  # step 1 (25%) done
        world.wait(60)
        world.plan()  # the pause done; step 3 asks for 2 canary pods, 1 is available
        assert world.replicas() == {stable: 3, new: 2}
        available = 1
    pods_say(world, new, PULL, ready=available, not_ready=1)
    for _ in range(5):
        world.plan()
        assert world.deployments[stable].replicas >= 4 - available
        assert _serving(world, stable, new) >= 4
        world.ready(stable)  # the stable pods asked for come up; the new ones never do
        world.wait(DEADLINE / 3)
    assert world.status.phase == "Degraded"
    assert world.status.reason == "ProgressDeadlineExceeded"
    assert world.replicas()[stable] == 4
    assert world.routes["main"] == stable


def test_halted_canary_keeps_the_main_service_on_both_until_stable_is_back_at_full_size() -> None:
    world, stable, new = rolling(rollback={"automatic": False})
    make_available(world, new, 1)
    world.plan()
    world.wait(60)
    world.plan()  # step 3: 2 canary pods, 1 available, so stable runs 3
    assert world.replicas() == {stable: 3, new: 2}
    pods_say(world, new, PULL, ready=1, not_ready=1)
    world.wait(DEADLINE)
    world.plan()
    assert world.status.reason == "ProgressDeadlineExceeded"
    assert world.replicas() == {stable: 4, new: 2}
    assert world.routes["main"] is None  # stable's 4th pod is not ready yet
    world.ready(stable)
    world.plan()
    assert world.routes["main"] == stable
    assert world.status.canary_weight == 0


def test_blue_green_halted_after_the_switch_sends_traffic_back_to_blue() -> None:
    analysis = {
        "prometheus": {"address": "http://prometheus:9090"},
        "metrics": [{"name": "error-rate", "query": "q", "max": 0.05}],
    }
    world, blue, green = rolling(
        blue_green={**BLUE_GREEN, "autoPromotionSeconds": 0},
        analysis=analysis,
        rollback={"automatic": False},
    )
    world.settle()
    world.wait(10)
    world.verdicts["error-rate"] = MetricVerdict("pass", world.now)
    world.settle()  # preview passed, scaled up, switched: verifying
    assert world.status.current_step == LEGACY_STEP[BlueGreenStage.VERIFYING]
    assert world.routes["main"] == green
    make_available(world, green, 2)  # half of green crashes
    pods_say(world, green, PULL, ready=2, not_ready=2)
    world.plan()
    world.wait(DEADLINE)
    world.plan()
    assert world.status.reason == "ProgressDeadlineExceeded"
    assert world.routes["main"] == blue
    assert world.replicas() == {blue: 4, green: 4}


def test_a_rollout_in_flight_under_a_status_written_before_the_deadline_existed() -> None:
    """No readinessWait in a status of today's operator: it parses, and the wait
    starts when this operator first sees the pods missing."""
    world, _stable, new = rolling()
    old = dump_status(world.status)
    old.pop("readinessWait", None)
    world.status = parse_status(old)
    world.wait(5000)
    world.plan()
    assert world.status.phase == "Progressing"
    wait = world.status.readiness_wait
    assert wait is not None and wait.since == world.now and wait.revision == new


def test_old_status_parses_and_new_fields_are_optional() -> None:
    assert ModelDeploymentStatus().readiness_wait is None
    status = parse_status(
        {"phase": "Degraded", "hold": {"revision": "abc", "reason": "RolledBack", "since": T0}}
    )
    assert status.readiness_wait is None


def test_spec_default_and_bounds() -> None:
    assert make_spec().progress_deadline_seconds == DEADLINE
    assert make_spec(progressDeadlineSeconds=30).progress_deadline_seconds == 30
    raw = make_spec().model_dump(by_alias=True, exclude_none=True, mode="json")
    for bad in (0, -1, 86401):
        with pytest.raises(SpecError, match="progressDeadlineSeconds"):
            parse_spec({**raw, "progressDeadlineSeconds": bad})


def test_a_short_deadline_counts_in_seconds() -> None:
    world, _stable, new = rolling(progressDeadlineSeconds=30)
    pods_say(world, new, PULL)
    world.wait(29)
    assert world.plan().requeue_after == pytest.approx(1)
    world.wait(1)
    world.plan()
    assert world.status.reason == "ProgressDeadlineExceeded"
    assert "progress deadline (30s) exceeded" in world.status.message
