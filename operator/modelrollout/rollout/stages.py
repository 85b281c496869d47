"""Where a rollout is, as status stores it, and the timers it waits for.

The blue/green stage is status.stage. Operators before it stored the stage as a
number in status.currentStep (which a canary uses as its step index): `stage()`
reads either, and `enter()` writes both, so an older operator (or plugin) still
finds the stage. The timers (a timed pause, auto-promotion, the verification
after the switch) are computed here from status and written to
status.stepTimer, so readers show them rather than recompute them; for a
status written before stepTimer the CLI calls `step_timer()` itself.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from modelrollout.api import BlueGreenStage, Timer

if TYPE_CHECKING:
    from datetime import datetime

    from modelrollout.api import ModelDeploymentSpec, ModelDeploymentStatus

# status.currentStep of each stage, as operators before status.stage wrote it.
# Shadowing came later: an older operator reads it as Previewing (it would stop the
# copies and wait for `promote` or auto-promotion), never as a later stage.
LEGACY_STEP: dict[BlueGreenStage, int] = {
    BlueGreenStage.PREVIEW_STARTING: 0,
    BlueGreenStage.SHADOWING: 1,
    BlueGreenStage.PREVIEWING: 1,
    BlueGreenStage.SCALING_UP: 2,
    BlueGreenStage.VERIFYING: 3,
    BlueGreenStage.VERIFIED: 4,
}
_BY_STEP = {step: stage for stage, step in LEGACY_STEP.items()}
_ORDER = tuple(LEGACY_STEP)


def known_stage(status: ModelDeploymentStatus) -> BlueGreenStage | None:
    """The blue/green stage, None when this version does not know it (a newer
    operator's)."""
    if status.stage is not None:
        return BlueGreenStage(status.stage) if status.stage in _BY_NAME else None
    return _BY_STEP.get(status.current_step or 0)


def stage(status: ModelDeploymentStatus) -> BlueGreenStage:
    """The stage to act on: one this version does not know counts as the last."""
    return known_stage(status) or BlueGreenStage.VERIFIED


def at_least(status: ModelDeploymentStatus, threshold: BlueGreenStage) -> bool:
    return _ORDER.index(stage(status)) >= _ORDER.index(threshold)


def enter(new: BlueGreenStage) -> dict[str, Any]:
    """The status fields that put a blue/green rollout in stage `new`."""
    return {"stage": new.value, "current_step": LEGACY_STEP[new]}


def written_stage(spec: ModelDeploymentSpec, status: ModelDeploymentStatus) -> str | None:
    """status.stage to write: the stage of a status from before status.stage filled
    in; a newer operator's stage left as it is."""
    if spec.strategy.blue_green is None or not status.rollout_in_flight:
        return status.stage
    known = known_stage(status)
    return known.value if known is not None else status.stage


def switched(spec: ModelDeploymentSpec, status: ModelDeploymentStatus) -> bool:
    """True while a blue/green rollout verifies its revision after the switch."""
    return (
        spec.strategy.blue_green is not None
        and status.rollout_in_flight
        and at_least(status, BlueGreenStage.VERIFYING)
    )


def step_seconds(spec: ModelDeploymentSpec, status: ModelDeploymentStatus) -> float | None:
    """How long the current step's timer runs from stepStartedAt; None without one."""
    if not status.rollout_in_flight:
        return None
    if spec.strategy.canary is not None:
        steps = spec.strategy.canary.steps
        index = status.current_step or 0
        pause = steps[index].pause if index < len(steps) else None
        return pause.seconds if pause is not None else None
    blue_green = spec.strategy.blue_green
    assert blue_green is not None, "neither canary nor blue/green"
    current = stage(status)
    if current == BlueGreenStage.SHADOWING and blue_green.shadow is not None:
        return blue_green.shadow.seconds
    if current == BlueGreenStage.PREVIEWING:
        seconds = blue_green.auto_promotion_seconds
        return None if seconds is None else float(seconds)
    if current in (BlueGreenStage.VERIFYING, BlueGreenStage.VERIFIED):
        return float(blue_green.scale_down_delay_seconds)
    return None


def step_timer(spec: ModelDeploymentSpec, status: ModelDeploymentStatus) -> Timer | None:
    """When the current step's timer ends (frozen while paused); None without one."""
    seconds = step_seconds(spec, status)
    if seconds is None or status.step_started_at is None:
        return None
    return frozen_timer(status.step_started_at + timedelta(seconds=seconds), status.paused_at)


def frozen_timer(ends_at: datetime, paused_at: datetime | None) -> Timer:
    """A timer ending at `ends_at`; paused, with the time that was left at the pause."""
    if paused_at is None:
        return Timer(ends_at=ends_at)
    left = max((ends_at - paused_at).total_seconds(), 0.0)
    return Timer(ends_at=ends_at, paused_seconds_left=left)


_BY_NAME = frozenset(member.value for member in BlueGreenStage)
