"""What canary and blue/green share: acting on an analysis failure, and timers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from modelrollout.rollout import analysis, transitions
from modelrollout.rollout.clock import stamp
from modelrollout.rollout.outcome import Reason

if TYPE_CHECKING:
    from datetime import datetime

    from modelrollout.api import ModelDeploymentStatus, Phase
    from modelrollout.rollout.analysis import Judgement
    from modelrollout.rollout.context import Context
    from modelrollout.rollout.outcome import Transition


def on_failure(
    ctx: Context, status: ModelDeploymentStatus, judgement: Judgement
) -> Transition | Reason:
    """Roll back when rollback.automatic, else the Degraded reason to hold with."""
    if ctx.spec.rollback.automatic:
        return transitions.roll_back(
            ctx, status, reason="RolledBack", message=judgement.message, judgement=judgement
        )
    return Reason(
        judgement.reason,
        f"{judgement.message}; rollback.automatic is off: `abort` to roll back "
        "or `promote` to go on",
    )


@dataclass(frozen=True)
class Halt:
    """The step stops where it is: Degraded (a failure without automatic rollback)
    or Paused (by the user)."""

    phase: Phase
    reason: str
    message: str


def judge_step(
    ctx: Context, status: ModelDeploymentStatus, *, comparisons: bool = True
) -> tuple[Judgement, Transition | Halt | None]:
    """The current step's analysis judgement, and what interrupts the step: a
    rollback (a Transition), a Halt, or None when the step may go on."""
    undoing = status.rollout_source == "Undo"
    judgement = (
        analysis.PASS
        if undoing
        else analysis.judge(
            ctx.spec.analysis, status, status.step_started_at, comparisons=comparisons
        )
    )
    if judgement.outcome == "fail":
        failure = on_failure(ctx, status, judgement)
        if isinstance(failure, Reason):
            return judgement, Halt("Degraded", failure.reason, failure.message)
        return judgement, failure
    if status.paused_at is not None:
        return judgement, Halt(
            "Paused", "PausedByUser", f"paused since {stamp(status.paused_at)}; `resume`"
        )
    return judgement, None


def deadline(started: datetime | None, seconds: float, now: datetime) -> datetime:
    return (started or now) + timedelta(seconds=seconds)


def earliest(*delays: float | None) -> float | None:
    pending = [delay for delay in delays if delay is not None]
    return min(pending) if pending else None
