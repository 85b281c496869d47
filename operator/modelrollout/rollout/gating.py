"""What canary and blue/green share: acting on a failed analysis or a missed
progress deadline, and timers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from modelrollout.api.reasons import Reason
from modelrollout.rollout import analysis, measurement, progress, transitions
from modelrollout.rollout.clock import stamp
from modelrollout.rollout.outcome import Explanation, Transition

if TYPE_CHECKING:
    from datetime import datetime

    from modelrollout.api import ModelDeploymentStatus, Phase
    from modelrollout.rollout.analysis import Judgement
    from modelrollout.rollout.context import Context


def on_failure(
    ctx: Context, status: ModelDeploymentStatus, judgement: Judgement
) -> Transition | Explanation:
    """Roll back when rollback.automatic, else the Degraded reason to hold with."""
    if ctx.spec.rollback.automatic:
        return transitions.roll_back(
            ctx, status, reason=Reason.ROLLED_BACK, message=judgement.message, judgement=judgement
        )
    return Explanation(
        judgement.required_reason,
        f"{judgement.message}; rollback.automatic is off: `abort` to roll back "
        "or `promote` to go on",
    )


@dataclass(frozen=True)
class Halt:
    """The step stops where it is: Degraded (a failure without automatic rollback)
    or Paused (by the user).

    `to_stable`: the main Service goes back to the stable revision alone (once it
    has all its replicas available), which keeps all of them: the new revision
    missed its progress deadline, so whatever of it became ready since gets no
    traffic until the user decides.
    """

    phase: Phase
    reason: Reason
    message: str
    to_stable: bool = False


def judge_step(
    ctx: Context, status: ModelDeploymentStatus, wanted: int
) -> tuple[Judgement, Transition | Halt | None]:
    """The current step's analysis judgement, and what interrupts the step: a
    rollback or a status change to plan again from (a Transition), a Halt, or
    None when the step may go on.

    `wanted` is the number of available pods of the new revision the step needs;
    fewer for longer than spec.progressDeadlineSeconds stops the rollout like a
    failed analysis does (see progress.py).
    """
    judgement = analysis.judge(
        ctx.spec.analysis, status, status.step_started_at, gating_checks(ctx, status)
    )
    if judgement.outcome == "fail":
        failure = on_failure(ctx, status, judgement)
        if isinstance(failure, Explanation):
            return judgement, Halt("Degraded", failure.reason, failure.message)
        return judgement, failure
    revision = status.canary_revision
    assert revision is not None, "a step without a rollout"
    waited = progress.watch(ctx, status, revision, wanted)
    if isinstance(waited, Transition):
        return judgement, waited
    if isinstance(waited, progress.Exceeded):
        return judgement, _deadline_exceeded(ctx, status, waited)
    if status.paused_at is not None:
        return judgement, Halt(
            "Paused", Reason.PAUSED_BY_USER, f"paused since {stamp(status.paused_at)}; `resume`"
        )
    return judgement, None


def _deadline_exceeded(
    ctx: Context, status: ModelDeploymentStatus, exceeded: progress.Exceeded
) -> Transition | Halt:
    """Roll back when rollback.automatic, else hold Degraded (latched in status),
    traffic on stable, until `abort`, `promote` or a new spec."""
    if ctx.spec.rollback.automatic:
        return transitions.roll_back(
            ctx, status, reason=Reason.PROGRESS_DEADLINE_EXCEEDED, message=exceeded.message
        )
    latched = progress.latch(ctx, status, exceeded)
    if latched is not None:
        return latched
    choices = (
        "`abort` to stop the undo"
        if status.rollout_source == "Undo"
        else "`abort` to roll back or `promote` to go on (the deadline starts over)"
    )
    return Halt(
        "Degraded",
        Reason.PROGRESS_DEADLINE_EXCEEDED,
        f"{exceeded.message}; rollback.automatic is off: traffic stays on stable; {choices}",
        to_stable=True,
    )


def gating_checks(ctx: Context, status: ModelDeploymentStatus) -> tuple[str, ...]:
    """The checks that decide the rollout's current step (see measurement.py)."""
    scope = measurement.scope(ctx.spec, status)
    return scope.gating if scope is not None else ()


def deadline(started: datetime | None, seconds: float, now: datetime) -> datetime:
    return (started or now) + timedelta(seconds=seconds)


def earliest(*delays: float | None) -> float | None:
    pending = [delay for delay in delays if delay is not None]
    return min(pending) if pending else None
