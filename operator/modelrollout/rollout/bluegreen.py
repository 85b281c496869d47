"""Blue/green: the new revision previewed, scaled to full, switched at once, then verified.

status.stage during a blue/green rollout (stages.py reads it, also from the
number in currentStep that operators before status.stage wrote):
  PreviewStarting  new revision at previewReplicas behind the preview Service
                   (more with `shadow`: pods for the copies, shadow.py)
  Shadowing        with `shadow` only: the old revision's servers copy a share of
                   their requests to the preview, seen by no client, for
                   `duration`; ends once the `shadow: true` metrics pass
  Previewing       preview ready (stepStartedAt = when); autoPromotionSeconds
                   or `promote` ends it, once analysis passes
  ScalingUp        new revision scaled to `replicas`; when available, the main
                   Service's selector switches to it
  Verifying        switched (stepStartedAt = when); with analysis, the new
                   revision is measured on all the traffic while the old one
                   stays up at full size. A failure sends traffic back to the
                   old revision at once; the rollout completes once
                   scaleDownDelaySeconds have passed and a measurement taken
                   after the switch passed. compareTo metrics are not judged
                   here: the stable revision no longer has traffic to compare.
  Verified         `promote` ended the verification early
Without analysis (or for an undo, which is not analysed) the rollout completes
at the switch and the old revision keeps running for scaleDownDelaySeconds
(status.pendingScaleDowns) so a rollback right after the switch finds it warm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelrollout.api import BlueGreenStage
from modelrollout.api.reasons import Reason
from modelrollout.rollout import (
    analysis,
    clock,
    gating,
    measurement,
    routing,
    shadow,
    stages,
    transitions,
)
from modelrollout.rollout import progress as deadline
from modelrollout.rollout.outcome import Event, Explanation, Settled, Transition

if TYPE_CHECKING:
    from modelrollout.api import BlueGreenStrategy, ModelDeploymentStatus, Phase
    from modelrollout.rollout.context import Context
    from modelrollout.rollout.outcome import StageResult


def preview_replicas(strategy: BlueGreenStrategy, replicas: int) -> int:
    """The preview's pods: previewReplicas, or more for a shadow phase's copies."""
    if strategy.shadow is None:
        return strategy.preview_replicas
    return max(strategy.preview_replicas, shadow.pods(replicas, strategy.shadow.percent))


def _verifies(ctx: Context, status: ModelDeploymentStatus) -> bool:
    """Whether anything decides after the switch (see the module docstring)."""
    after = measurement.scope(ctx.spec, status, after_switch=True)
    return after is not None and bool(after.gating)


def advance(ctx: Context, status: ModelDeploymentStatus) -> StageResult:
    strategy = ctx.spec.strategy.blue_green
    assert strategy is not None, "blue/green stage without a blueGreen strategy"
    green, blue = status.canary_revision, status.stable_revision
    assert green is not None and blue is not None, "blue/green stage without both revisions"
    step = stages.stage(status)
    live = stages.at_least(status, BlueGreenStage.VERIFYING)
    green_wanted = (
        ctx.replicas
        if stages.at_least(status, BlueGreenStage.SCALING_UP)
        else preview_replicas(strategy, ctx.replicas)
    )
    shadowing = shadow.current(ctx.spec, status)
    available = ctx.observed.available(green)
    progress = f"revision {green} (version {status.canary_version})"
    summary = analysis.summary(status, gating.gating_checks(ctx, status))
    if summary:
        progress = f"{progress}, {summary}"
    delay = float(strategy.scale_down_delay_seconds)
    # Through a route, the switch is the route sending everything to `<name>-canary`
    # (green) at once; the `<name>` Service moves to green when the rollout completes.
    exact = routing.exact(ctx.spec)
    switched_split = ((blue, 0), (green, 100))

    def settle(
        phase: Phase,
        reason: Reason,
        detail: str,
        requeue: float | None = None,
        *,
        to_stable: bool = False,
        switching: bool = False,
    ) -> Settled:
        # Blue keeps all its replicas until the rollout ends. Halted for the
        # progress deadline after the switch, traffic goes back to it (once its
        # pods are available, which they stay during the verification).
        main = green if live or switching else blue
        if to_stable and ctx.observed.available(blue) >= ctx.replicas:
            main = blue
        through_route = exact and main == green
        return Settled(
            replicas={green: green_wanted, blue: ctx.replicas},
            routes={"main": None if through_route else main, "canary": green, "preview": green},
            phase=phase,
            reason=Explanation(reason, f"{progress}: {detail}{deadline.note(ctx, status, green)}"),
            requeue_after=gating.earliest(
                requeue, ctx.analysis_interval, deadline.requeue(ctx, status, green)
            ),
            weight=100 if main == green else 0,
            split=switched_split if through_route else (),
            mirror=None if to_stable else shadow.mirror(shadowing, blue, green),
        )

    def route_waits(switched: bool) -> routing.RouteWait | None:
        if switched:
            return routing.judge(ctx.spec, ctx.observed, None, switched_split, ())
        return routing.judge(ctx.spec, ctx.observed, blue, (), ())

    judgement, interruption = gating.judge_step(ctx, status, green_wanted)
    if isinstance(interruption, gating.Halt):
        return settle(
            interruption.phase,
            interruption.reason,
            interruption.message,
            to_stable=interruption.to_stable,
        )
    if interruption is not None:
        return interruption
    waiting = route_waits(live) if exact else None
    if waiting is not None and waiting.degraded:
        return settle("Degraded", waiting.reason, waiting.message, to_stable=True)

    if step == BlueGreenStage.PREVIEW_STARTING:
        if available >= green_wanted:
            after = BlueGreenStage.SHADOWING if strategy.shadow else BlueGreenStage.PREVIEWING
            return Transition(
                status.model_copy(update={**stages.enter(after), "step_started_at": ctx.now}),
                (Event(Reason.PREVIEW_READY, f"{progress}: preview ready"),),
            )
        return settle(
            "Progressing",
            Reason.PREVIEW_STARTING,
            f"{available}/{green_wanted} preview replicas available",
        )
    if step == BlueGreenStage.SHADOWING:
        # Without `shadow` (removed from the spec meanwhile) the phase is over.
        ends = gating.deadline(
            status.step_started_at, shadowing.seconds if shadowing else 0.0, ctx.now
        )
        if shadowing is not None and ctx.now < ends:
            return settle(
                "Progressing",
                Reason.SHADOWING,
                shadow.until(shadowing, "preview", ends),
                (ends - ctx.now).total_seconds(),
            )
        if shadowing is not None and judgement.outcome == "hold":
            return settle("Paused", judgement.required_reason, judgement.message)
        if shadowing is not None and judgement.outcome == "pending":
            return settle("Progressing", judgement.required_reason, judgement.message)
        return Transition(
            status.model_copy(
                update={**stages.enter(BlueGreenStage.PREVIEWING), "step_started_at": ctx.now}
            ),
            (Event(Reason.SHADOW_PASSED, f"{progress}: shadow phase passed"),),
        )
    if step == BlueGreenStage.PREVIEWING:
        wait = strategy.auto_promotion_seconds
        if wait is None:
            return settle(
                "Paused", Reason.AWAITING_PROMOTION, "preview ready; `promote` to switch traffic"
            )
        ends = gating.deadline(status.step_started_at, wait, ctx.now)
        if ctx.now < ends:
            return settle(
                "Progressing",
                Reason.PREVIEWING,
                f"previewing; switching at {clock.stamp(ends)}",
                (ends - ctx.now).total_seconds(),
            )
        if judgement.outcome == "hold":
            return settle("Paused", judgement.required_reason, judgement.message)
        if judgement.outcome == "pending":
            return settle("Progressing", judgement.required_reason, judgement.message)
        return Transition(
            status.model_copy(
                update={**stages.enter(BlueGreenStage.SCALING_UP), "step_started_at": ctx.now}
            ),
        )
    if step == BlueGreenStage.SCALING_UP:
        if available < ctx.replicas:
            return settle(
                "Progressing",
                Reason.SCALING_UP,
                f"{available}/{ctx.replicas} replicas available before the switch",
            )
        switching = route_waits(True) if exact else None
        if switching is not None:
            return settle(
                "Progressing",
                switching.reason,
                f"switching: {switching.message}",
                routing.ROUTE_RECHECK_SECONDS,
                switching=True,
            )
        if not _verifies(ctx, status):
            return transitions.promote(ctx, status, scale_down_delay=delay)
        return Transition(
            status.model_copy(
                update={**stages.enter(BlueGreenStage.VERIFYING), "step_started_at": ctx.now}
            ),
            (
                Event(
                    Reason.SWITCHED,
                    f"{progress}: serves all traffic; revision {blue} stays up "
                    "while the switch is verified",
                ),
            ),
        )
    if step == BlueGreenStage.VERIFIED:
        return transitions.promote(ctx, status)
    if waiting is not None:
        return settle("Progressing", waiting.reason, waiting.message, routing.ROUTE_RECHECK_SECONDS)
    ends = gating.deadline(status.step_started_at, delay, ctx.now)
    if ctx.now < ends:
        return settle(
            "Progressing",
            Reason.VERIFYING,
            f"switched; verifying on all traffic until {clock.stamp(ends)}, "
            f"revision {blue} stays up until then",
            (ends - ctx.now).total_seconds(),
        )
    if judgement.outcome == "hold":
        return settle("Paused", judgement.required_reason, judgement.message)
    if judgement.outcome == "pending":
        return settle("Progressing", judgement.required_reason, f"switched; {judgement.message}")
    return transitions.promote(ctx, status)
