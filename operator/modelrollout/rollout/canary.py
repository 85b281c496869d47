"""The stepwise canary, with weights realised as replica counts (see weights.py),
or set exactly by a router (routing.py: the canary is then sized by
setCanaryScale, the stable keeps every replica, and a step also waits for the
route to carry its weight and header routes).

status.currentStep indexes strategy.canary.steps; len(steps) means every step is
done and the new revision is being scaled to full size before it takes all
traffic. A setWeight step ends when its canary pods are available and analysis
passes; a timed pause when its deadline (stepStartedAt + duration) has passed and
analysis passes; a pause without duration on `promote`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelrollout.api import format_seconds
from modelrollout.api.reasons import Reason
from modelrollout.rollout import analysis, clock, gating, routing, shadow, transitions
from modelrollout.rollout import progress as deadline
from modelrollout.rollout.outcome import Event, Explanation, Settled, Transition
from modelrollout.rollout.weights import (
    canary_replicas,
    effective_weight,
    stable_replicas,
    step_weight,
)

if TYPE_CHECKING:
    from modelrollout.api import CanaryStep, ModelDeploymentStatus, Phase
    from modelrollout.rollout.context import Context
    from modelrollout.rollout.outcome import StageResult


def advance(ctx: Context, status: ModelDeploymentStatus) -> StageResult:
    strategy = ctx.spec.strategy.canary
    assert strategy is not None, "canary stage without a canary strategy"
    steps = strategy.steps
    canary, stable = status.canary_revision, status.stable_revision
    assert canary is not None and stable is not None, "canary stage without both revisions"
    index = min(status.current_step or 0, len(steps))
    promoting = index >= len(steps)
    weight = (
        100
        if promoting
        else step_weight([s.set_weight for s in steps[: index + 1] if s.set_weight is not None])
    )
    exact = routing.exact(ctx.spec)
    # Pods for the traffic the canary answers; a shadow step adds pods for its copies.
    answering = (
        routing.canary_scale(ctx.replicas, steps, index, weight)
        if exact
        else canary_replicas(ctx.replicas, weight)
    )
    shadowing = shadow.current(ctx.spec, status)
    wanted = (
        max(answering, shadow.pods(ctx.replicas, shadowing.percent)) if shadowing else answering
    )
    available = ctx.observed.available(canary)
    stable_deployment = ctx.observed.revision(stable)
    going_away = sum(
        r.ready_replicas for r in ctx.observed.revisions if r.revision not in (stable, canary)
    )
    stable_budget = None if stable_deployment is None else stable_deployment.replicas + going_away
    if exact and promoting and available < ctx.replicas:
        # The route moves all traffic only to a canary with every replica available.
        weight = step_weight([s.set_weight for s in steps if s.set_weight is not None])
    # With exact weights the route, not the pods, decides the share: the main
    # Service keeps the stable alone until the route gives the canary any.
    spans_both = weight > 0 if exact else answering > 0
    split = ((stable, 100 - weight), (canary, weight))
    header_routes = routing.header_routes_at(steps, index) if exact else ()
    if exact:
        in_effect = _routed_weight(ctx, canary) if spans_both else 0
    else:
        in_effect = (
            effective_weight(ctx.observed.ready(canary), ctx.observed.ready(stable))
            if spans_both
            else 0
        )
    progress = (
        f"promoting revision {canary} (version {status.canary_version})"
        if promoting
        else f"step {index + 1}/{len(steps)}: weight {weight}%"
    )
    summary = analysis.summary(status, gating.gating_checks(ctx, status))
    if summary:
        progress = f"{progress}, {summary}"

    def settle(
        phase: Phase,
        reason: Reason,
        detail: str,
        requeue: float | None = None,
        *,
        to_stable: bool = False,
    ) -> Settled:
        # Stable shrinks only by available canary pods (never for pods not ready);
        # a rollout halted for its progress deadline takes all of stable back, and
        # the main Service leaves the canary once stable has them available. With
        # exact weights the stable keeps every replica: the route can give its
        # share back at once.
        stable_wanted = (
            ctx.replicas
            if to_stable or exact
            else stable_replicas(ctx.replicas, answering, available, stable_budget)
        )
        main = None if spans_both else stable
        if to_stable and ctx.observed.available(stable) >= ctx.replicas:
            main = stable
        return Settled(
            replicas={canary: wanted, stable: stable_wanted},
            routes={"main": main, "canary": canary, "preview": canary},
            phase=phase,
            reason=Explanation(reason, f"{progress}: {detail}{deadline.note(ctx, status, canary)}"),
            requeue_after=gating.earliest(
                requeue, ctx.analysis_interval, deadline.requeue(ctx, status, canary)
            ),
            weight=in_effect if main is None else 0,
            split=split,
            header_routes=() if to_stable else header_routes,
            mirror=None if to_stable else shadow.mirror(shadowing, stable, canary),
        )

    judgement, interruption = gating.judge_step(ctx, status, wanted)
    if isinstance(interruption, gating.Halt):
        return settle(
            interruption.phase,
            interruption.reason,
            interruption.message,
            to_stable=interruption.to_stable,
        )
    if interruption is not None:
        return interruption
    waiting = routing.judge(
        ctx.spec,
        ctx.observed,
        None if spans_both else stable,
        split,
        tuple(r.name for r in header_routes),
    )
    if waiting is not None and waiting.degraded:
        return settle("Degraded", waiting.reason, waiting.message, to_stable=True)
    if promoting:
        if available >= ctx.replicas and waiting is not None:
            return settle(
                "Progressing", waiting.reason, waiting.message, routing.ROUTE_RECHECK_SECONDS
            )
        if available >= ctx.replicas:
            return transitions.promote(ctx, status)
        return settle(
            "Progressing", Reason.PROMOTING, f"{available}/{ctx.replicas} new replicas available"
        )

    step = steps[index]
    sized = step.set_weight is not None or step.set_canary_scale is not None or step.shadow
    if sized and available < wanted:
        return settle(
            "Progressing",
            Reason.WAITING_FOR_CANARY,
            f"{available}/{wanted} canary replicas available",
        )
    if waiting is not None:
        return settle("Progressing", waiting.reason, waiting.message, routing.ROUTE_RECHECK_SECONDS)
    if step.shadow is not None:
        ends = gating.deadline(status.step_started_at, step.shadow.seconds, ctx.now)
        if ctx.now < ends:
            return settle(
                "Progressing",
                Reason.SHADOWING,
                shadow.until(step.shadow, "canary", ends),
                (ends - ctx.now).total_seconds(),
            )
    if step.pause is not None:
        seconds = step.pause.seconds
        if seconds is None:
            return settle("Paused", Reason.AWAITING_PROMOTION, "paused until `promote`")
        ends = gating.deadline(status.step_started_at, seconds, ctx.now)
        if ctx.now < ends:
            return settle(
                "Progressing",
                Reason.PAUSE_STEP,
                f"pausing {format_seconds(seconds)}, until {clock.stamp(ends)}",
                (ends - ctx.now).total_seconds(),
            )
    if judgement.outcome == "hold":
        return settle("Paused", judgement.required_reason, judgement.message)
    if judgement.outcome == "pending":
        return settle("Progressing", judgement.required_reason, judgement.message)
    return Transition(
        status.model_copy(update={"current_step": index + 1, "step_started_at": ctx.now}),
        (
            Event(
                Reason.STEP_COMPLETED,
                f"step {index + 1}/{len(steps)} ({describe_step(step)}) completed",
            ),
        ),
    )


def _routed_weight(ctx: Context, canary: str) -> int:
    """The canary's share as the router read it back from the route."""
    shares = dict(ctx.observed.route_weights.get("main", ()))
    return shares.get(canary, 0)


def describe_step(step: CanaryStep) -> str:
    """A step in the spec's words, for Events and `status`."""
    if step.set_weight is not None:
        return f"setWeight {step.set_weight}%"
    if step.set_canary_scale is not None:
        scale = step.set_canary_scale
        if scale.replicas is not None:
            return f"setCanaryScale {scale.replicas} replicas"
        if scale.weight is not None:
            return f"setCanaryScale {scale.weight}%"
        return "setCanaryScale matching the weight"
    if step.shadow is not None:
        return f"shadow {step.shadow.percent}% for {format_seconds(step.shadow.seconds)}"
    if step.set_header_route is not None:
        route = step.set_header_route
        return f"setHeaderRoute {route.name}" + ("" if route.match else " removed")
    seconds = step.pause.seconds if step.pause else None
    return "pause (until promote)" if seconds is None else f"pause {format_seconds(seconds)}"
