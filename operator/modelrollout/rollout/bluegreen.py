"""Blue/green: the new revision previewed, scaled to full, then switched at once.

status.currentStep during a blue/green rollout:
  0  PREVIEW_STARTING  new revision at previewReplicas behind the preview Service
  1  PREVIEWING        preview ready (stepStartedAt = when); autoPromotionSeconds
                       or `promote` ends it, once analysis passes
  2  SCALING_UP        new revision scaled to `replicas`; when available, the main
                       Service's selector switches to it and the rollout completes
After the switch the old revision keeps running for scaleDownDelaySeconds
(status.pendingScaleDowns) so a rollback right after the switch finds it warm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelrollout.rollout import analysis, gating, transitions
from modelrollout.rollout.outcome import Event, Reason, Settled, Transition

if TYPE_CHECKING:
    from modelrollout.api import ModelDeploymentStatus, Phase
    from modelrollout.rollout.context import Context
    from modelrollout.rollout.outcome import StageResult

PREVIEW_STARTING = 0
PREVIEWING = 1
SCALING_UP = 2


def advance(ctx: Context, status: ModelDeploymentStatus) -> StageResult:
    strategy = ctx.spec.strategy.blue_green
    assert strategy is not None, "blue/green stage without a blueGreen strategy"
    green, blue = status.canary_revision, status.stable_revision
    assert green is not None and blue is not None, "blue/green stage without both revisions"
    step = min(status.current_step or 0, SCALING_UP)
    green_wanted = ctx.replicas if step == SCALING_UP else strategy.preview_replicas
    available = ctx.observed.available(green)
    progress = f"revision {green} (version {status.canary_version})"
    summary = analysis.summary(ctx.spec.analysis, status)
    if summary:
        progress = f"{progress}, {summary}"

    def settle(phase: Phase, reason: str, detail: str, requeue: float | None = None) -> Settled:
        return Settled(
            replicas={green: green_wanted, blue: ctx.replicas},
            routes={"main": blue, "canary": green, "preview": green},
            phase=phase,
            reason=Reason(reason, f"{progress}: {detail}"),
            requeue_after=gating.earliest(requeue, ctx.analysis_interval),
        )

    judgement, interruption = gating.judge_step(ctx, status)
    if isinstance(interruption, gating.Halt):
        return settle(interruption.phase, interruption.reason, interruption.message)
    if interruption is not None:
        return interruption

    if step == PREVIEW_STARTING:
        if available >= green_wanted:
            return Transition(
                status.model_copy(update={"current_step": PREVIEWING, "step_started_at": ctx.now}),
                (Event("PreviewReady", f"{progress}: preview ready"),),
            )
        return settle(
            "Progressing",
            "PreviewStarting",
            f"{available}/{green_wanted} preview replicas available",
        )
    if step == PREVIEWING:
        wait = strategy.auto_promotion_seconds
        if wait is None:
            return settle(
                "Paused", "AwaitingPromotion", "preview ready; `promote` to switch traffic"
            )
        ends = gating.deadline(status.step_started_at, wait, ctx.now)
        if ctx.now < ends:
            return settle(
                "Progressing",
                "Previewing",
                f"previewing; switching at {gating.stamp(ends)}",
                (ends - ctx.now).total_seconds(),
            )
        if judgement.outcome == "hold":
            return settle("Paused", judgement.reason, judgement.message)
        if judgement.outcome == "pending":
            return settle("Progressing", judgement.reason, judgement.message)
        return Transition(
            status.model_copy(update={"current_step": SCALING_UP, "step_started_at": ctx.now}),
        )
    if available >= ctx.replicas:
        return transitions.promote(
            ctx, status, scale_down_delay=float(strategy.scale_down_delay_seconds)
        )
    return settle(
        "Progressing",
        "ScalingUp",
        f"{available}/{ctx.replicas} replicas available before the switch",
    )
