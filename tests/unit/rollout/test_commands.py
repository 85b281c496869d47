"""Manual commands: abort, retry, pause/resume, undo; exactly once; rejections."""

from __future__ import annotations

import pytest
from rollout_world import World, deployed, make_spec

from modelrollout.api import Command, spec_revision
from modelrollout.rollout import command_rejection

pytestmark = pytest.mark.unit


def in_canary() -> tuple[World, str, str]:
    world = deployed()
    stable = world.revision
    world.change_spec(model={"version": "2"})
    world.settle()  # step 2/4: the timed pause
    return world, stable, world.revision


def released(world: World, stable: str, canary: str) -> None:
    assert world.routes["main"] == stable
    assert world.replicas()[stable] == 4
    assert world.replicas()[canary] == 0


def test_abort_sends_all_traffic_back_at_once_and_holds_until_retry() -> None:
    world, stable, canary = in_canary()
    world.send("abort")
    world.plan()
    released(world, stable, canary)
    assert world.status.phase == "Degraded"
    assert world.status.reason == "Aborted"
    assert "`retry`" in world.status.message
    assert world.status.last_rollback is not None
    assert world.status.last_rollback.revision == canary
    world.settle()
    assert world.status.phase == "Degraded"  # not rolled out again by itself
    assert world.status.canary_revision is None

    world.send("retry")
    world.plan()
    assert world.status.canary_revision == canary
    assert world.status.current_step == 0


def test_a_new_spec_after_abort_rolls_out_without_retry() -> None:
    world, _stable, _canary = in_canary()
    world.send("abort")
    world.settle()
    world.change_spec(model={"version": "3"})
    world.plan()
    assert world.status.hold is None
    assert world.status.canary_version == "3"


def test_a_command_applies_once_even_when_planned_again() -> None:
    world, _stable, _canary = in_canary()
    command_id = world.send("pause")
    world.plan()
    assert world.status.last_command is not None
    assert world.status.last_command.id == command_id
    assert world.status.last_command.result == "Applied"
    paused_at = world.status.paused_at
    world.wait(10)
    world.plan()  # the annotation is still there
    assert world.status.paused_at == paused_at
    assert world.event_reasons().count("CommandApplied") == 1


def test_pause_freezes_the_pause_timer_and_resume_extends_it() -> None:
    world, _stable, _canary = in_canary()  # pause of 60s starts at T0
    world.wait(20)
    world.send("pause")
    world.plan()
    assert world.status.phase == "Paused"
    assert world.status.reason == "PausedByUser"
    world.wait(300)
    result = world.plan()
    assert world.status.current_step == 1
    assert result.requeue_after is None  # nothing to wake for while paused
    world.send("resume")
    result = world.plan()
    assert world.status.phase == "Progressing"
    assert result.requeue_after == pytest.approx(40)  # 60s pause, 20s had run


def promoted_twice() -> tuple[World, str, str]:
    """Version 1 deployed, then version 2 promoted: history holds both."""
    world = deployed()
    first = world.revision
    world.change_spec(model={"version": "2"})
    world.plan()
    world.send("promote", full=True)
    world.settle()
    return world, first, world.revision


def test_undo_serves_an_older_revision_without_touching_spec() -> None:
    world, first, second = promoted_twice()
    assert [e.number for e in world.status.history] == [2, 1]

    world.send("undo", toRevision=1)
    world.settle()
    assert world.status.phase == "Healthy"
    assert world.status.reason == "Undone"
    assert world.status.stable_revision == first
    assert world.routes["main"] == first
    assert world.replicas() == {first: 4, second: 0}
    assert spec_revision(world.spec) == second  # spec untouched, and not rolled out again
    assert world.status.canary_revision is None
    assert [(e.number, e.version) for e in world.status.history] == [(3, "1"), (2, "2")]

    world.send("retry")
    world.plan()
    assert world.status.canary_revision == second


def test_malformed_command_is_recorded_as_rejected_once() -> None:
    world, _, _ = in_canary()
    world.command = '{"id": "x1", "action": "launch"}'
    result = world.plan()
    assert world.status.last_command is not None
    assert world.status.last_command.result == "Rejected"
    assert "action" in world.status.last_command.message
    assert [e.type for e in result.events] == ["Warning"]
    assert world.plan().events == ()


@pytest.mark.parametrize(
    ("situation", "command", "expected"),
    [
        ("healthy", {"action": "promote"}, "nothing to promote"),
        ("healthy", {"action": "abort"}, "nothing to abort"),
        ("healthy", {"action": "pause"}, "nothing to pause"),
        ("healthy", {"action": "resume"}, "not paused"),
        ("healthy", {"action": "retry"}, "nothing to retry"),
        ("healthy", {"action": "undo"}, "no earlier revision"),
        ("healthy", {"action": "undo", "toRevision": 7}, "not in history"),
        ("canary", {"action": "undo"}, "abort` it first"),
        ("canary", {"action": "retry"}, "abort` it first"),
        ("canary", {"action": "resume"}, "with `promote`"),
        ("aborted", {"action": "promote"}, "use `retry`"),
        ("canary", {"action": "promote"}, None),
        ("canary", {"action": "pause"}, None),
        ("aborted", {"action": "retry"}, None),
    ],
)
def test_command_rejection(
    situation: str, command: dict[str, object], expected: str | None
) -> None:
    world = deployed()
    if situation in ("canary", "aborted"):
        world.change_spec(model={"version": "2"})
        world.settle()
    if situation == "aborted":
        world.send("abort")
        world.settle()
    rejection = command_rejection(
        world.spec, world.status, Command.model_validate({"id": "c", **command})
    )
    if expected is None:
        assert rejection is None
    else:
        assert rejection is not None and expected in rejection


def test_rejected_command_changes_nothing_but_is_reported() -> None:
    world = deployed(make_spec())
    before = world.replicas()
    world.send("promote")
    world.plan()
    assert world.replicas() == before
    assert world.status.last_command is not None
    assert world.status.last_command.result == "Rejected"
    assert world.status.phase == "Healthy"


def test_plain_undo_goes_back_to_the_previous_revision() -> None:
    world, first, second = promoted_twice()
    world.send("undo")
    world.settle()
    assert world.status.stable_revision == first
    assert world.routes["main"] == first
    assert world.replicas() == {first: 4, second: 0}
    assert world.status.hold is not None and world.status.hold.revision == second


def test_undo_whose_deployment_vanishes_stops_with_a_warning() -> None:
    world, first, second = promoted_twice()
    world.send("undo")
    world.plan()
    assert world.status.canary_revision == first
    del world.deployments[first]  # deleted by hand while the undo ran
    world.plan()
    assert "UndoFailed" in world.event_reasons()
    assert world.status.canary_revision is None
    assert world.status.stable_revision == second
    assert world.routes["main"] == second


def test_a_deleted_stable_deployment_is_forgotten_and_the_spec_deployed_directly() -> None:
    world, stable, canary = in_canary()
    del world.deployments[stable]
    world.settle()
    assert "StableMissing" in world.event_reasons()
    assert world.status.stable_revision == canary
    assert world.status.phase == "Healthy"
    assert world.routes["main"] == canary
