"""Blue/green: preview, scale to full, switch the selector, delayed scale-down."""

from __future__ import annotations

import pytest
from rollout_world import World, deployed, make_spec

pytestmark = pytest.mark.unit

BLUE_GREEN = {"previewReplicas": 1, "autoPromotionSeconds": 120, "scaleDownDelaySeconds": 30}


def started(**options: object) -> tuple[World, str, str]:
    world = deployed(make_spec(blue_green={**BLUE_GREEN, **options}))
    blue = world.revision
    world.change_spec(model={"version": "2"})
    return world, blue, world.revision


def test_preview_runs_behind_the_preview_service_only() -> None:
    world, blue, green = started()
    world.plan()
    assert world.replicas() == {blue: 4, green: 1}
    assert world.routes == {"main": blue, "canary": green, "preview": green}
    assert world.status.reason == "PreviewStarting"
    world.ready()
    result = world.plan()
    assert world.status.reason == "Previewing"
    assert result.requeue_after == pytest.approx(120)
    assert world.status.canary_weight == 0


def test_auto_promotion_scales_up_then_switches_then_scales_down_after_the_delay() -> None:
    world, blue, green = started()
    world.settle()
    world.wait(120)
    world.plan()
    assert world.replicas() == {blue: 4, green: 4}  # full size before any traffic moves
    assert world.routes["main"] == blue
    assert world.status.reason == "ScalingUp"
    world.ready()
    result = world.plan()
    assert world.routes["main"] == green
    assert world.status.phase == "Healthy"
    assert world.status.stable_revision == green
    assert world.replicas()[blue] == 4  # still warm for a quick rollback
    assert result.requeue_after == pytest.approx(30)
    world.wait(29)
    assert world.plan().actions == ()
    world.wait(1)
    world.plan()
    assert world.replicas() == {blue: 0, green: 4}
    assert world.status.pending_scale_downs == ()
    assert world.plan().requeue_after is None


def test_without_auto_promotion_the_preview_waits_for_promote() -> None:
    world, _blue, green = started(autoPromotionSeconds=None)
    world.settle()
    assert world.status.phase == "Paused"
    assert world.status.reason == "AwaitingPromotion"
    world.wait(3600)
    world.settle()
    assert world.status.reason == "AwaitingPromotion"
    world.send("promote")
    world.settle()
    assert world.status.stable_revision == green
    assert world.routes["main"] == green


def test_abort_during_preview_keeps_blue_serving() -> None:
    world, blue, green = started()
    world.settle()
    world.send("abort")
    world.settle()
    assert world.status.phase == "Degraded"
    assert world.status.reason == "Aborted"
    assert world.routes == {"main": blue, "canary": blue, "preview": blue}
    assert world.replicas() == {blue: 4, green: 0}


def test_a_newer_revision_during_the_preview_replaces_it() -> None:
    world, blue, green = started()
    world.settle()
    world.change_spec(model={"version": "3"})
    newest = world.revision
    world.plan()
    assert "RolloutSuperseded" in world.event_reasons()
    assert world.status.canary_revision == newest
    assert world.routes["main"] == blue
    assert world.replicas() == {blue: 4, green: 0, newest: 1}


def test_pause_freezes_the_auto_promotion_timer_and_resume_continues_it() -> None:
    world, blue, green = started()
    world.settle()  # preview ready at T0: auto-promotion at T0 + 120 s
    world.wait(100)
    world.send("pause")
    world.plan()
    assert (world.status.phase, world.status.reason) == ("Paused", "PausedByUser")
    world.wait(600)
    world.settle()
    assert world.routes["main"] == blue, "a paused preview was switched"
    world.send("resume")
    result = world.plan()
    assert world.status.reason == "Previewing"
    assert result.requeue_after == pytest.approx(20)  # 120 s, of which 100 s had run
    world.wait(20)
    world.settle()
    assert world.routes["main"] == green
