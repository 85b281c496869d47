"""plan(): the decision core's entry point.

One call looks at the spec, the status written last time and the observed
world, and returns what to do and the next status. It is a pure function:
time comes in as `now` (a timezone-aware datetime), and the same inputs give
the same Plan. Calling it again with its own new_status and a world that has
not moved returns the same status and no actions beyond those still pending.
Work per call is bounded by the number of steps and observed Deployments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelrollout.api import names as n
from modelrollout.api import spec_revision
from modelrollout.api.reasons import Reason
from modelrollout.api.spec import MAX_STEPS
from modelrollout.rollout import (
    analysis,
    bluegreen,
    canary,
    commands,
    drift,
    gating,
    measurement,
    progress,
    retraining,
    routing,
    scale,
    stages,
    steady,
    transitions,
)
from modelrollout.rollout.actions import (
    Action,
    DeleteAutoscaler,
    DeleteRevision,
    EnsureAutoscaler,
    EnsureRevision,
    RouteService,
    ScaleRevision,
    SetHeaderRoutes,
    SetMirror,
)
from modelrollout.rollout.conditions import conditions_for
from modelrollout.rollout.context import Context
from modelrollout.rollout.outcome import Event, Explanation, Plan, Settled, Transition
from modelrollout.rollout.validation import spec_problems

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from modelrollout.api import ModelDeploymentSpec, ModelDeploymentStatus
    from modelrollout.rollout.observed import Observed
    from modelrollout.rollout.outcome import StageResult

# The operator does not watch HPAs: a conflict over one is looked at again this often.
AUTOSCALER_RECHECK_SECONDS = 30.0

# Every transition moves forward (a step, a promotion, a rollback), so a plan
# settles within the steps plus a handful of state changes.
_MAX_TRANSITIONS = MAX_STEPS + 16


def plan(
    spec: ModelDeploymentSpec,
    status: ModelDeploymentStatus,
    observed: Observed,
    now: datetime,
) -> Plan:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    problems = spec_problems(spec)
    if problems:
        return _invalid(problems, status, observed.generation, now)
    conflict = _autoscaler_conflict(spec, observed)
    if conflict is not None:
        why, message = conflict
        return _invalid(
            [message], status, observed.generation, now, why, AUTOSCALER_RECHECK_SECONDS
        )
    ctx = Context(spec=spec, observed=observed, now=now, target=spec_revision(spec))
    status, events = commands.handle(ctx, status)
    for _ in range(_MAX_TRANSITIONS):
        result = _stage(ctx, status)
        if isinstance(result, Settled):
            return _finish(ctx, status, result, events)
        status, events = result.status, events + result.events
    raise AssertionError("plan did not settle")  # a transition that does not move on


def _autoscaler_conflict(
    spec: ModelDeploymentSpec, observed: Observed
) -> tuple[Reason, str] | None:
    """Why spec.autoscaling cannot have its HPA; None when it can (or is not set).
    Nothing acts meanwhile: the ModelDeployment would otherwise have two autoscalers
    (someone's HPA of that name and the one asked for), or one nobody can see."""
    if spec.autoscaling is None or observed.autoscaler not in ("foreign", "forbidden"):
        return None
    hpa = f"HorizontalPodAutoscaler {n.autoscaler_name(observed.name)!r}"
    if observed.autoscaler == "foreign":
        return (
            Reason.AUTOSCALER_CONFLICT,
            f"spec.autoscaling: {hpa} exists and is not this ModelDeployment's; delete or "
            "rename it (an HPA of your own can target the ModelDeployment instead of "
            "spec.autoscaling); what serves is left as it is",
        )
    return (
        Reason.AUTOSCALER_FORBIDDEN,
        f"spec.autoscaling: the operator may not read {hpa} (RBAC: the chart's "
        "rbac.autoscaling); what serves is left as it is",
    )


def invalid_spec(
    status: ModelDeploymentStatus, generation: int, message: str, now: datetime
) -> Plan:
    """The plan for an object whose spec does not even parse: `message` is str(SpecError).

    Degraded/InvalidSpec and no actions; whatever serves keeps serving.
    """
    return _invalid([message], status, generation, now)


def unresolved_model(
    status: ModelDeploymentStatus,
    generation: int,
    reason: Reason,
    message: str,
    now: datetime,
) -> Plan:
    """The plan while spec.model.registry cannot be resolved (`reason` says why):
    Degraded and no actions, so nothing is promoted, started or torn down on a
    registry that cannot say what to serve."""
    return _invalid([message], status, generation, now, reason)


def _stage(ctx: Context, status: ModelDeploymentStatus) -> StageResult:
    target, stable = ctx.target, status.stable_revision
    hold = status.hold
    if hold is not None and (
        hold.revision != target or (not status.rollout_in_flight and hold.revision == stable)
    ):
        # The spec moved on, or the held revision serves again: the hold is spent.
        return Transition(status.model_copy(update={"hold": None}))
    if stable is not None and stable != target and ctx.observed.revision(stable) is None:
        return transitions.forget_missing_stable(status)
    if status.rollout_in_flight and status.drift is not None:
        # A rollout replaces the drifting revision; the watch starts again after it.
        return Transition(status.model_copy(update={"drift": None}))
    if status.rollout_in_flight:
        if status.rollout_source == "Undo":
            if ctx.observed.revision(status.canary_revision) is None:
                return _undo_lost(status)
        elif status.canary_revision != target:
            return transitions.supersede(ctx, status)
        if ctx.replicas == 0:
            return transitions.promote(ctx, status)  # no pods, nothing to verify
        applies = measurement.scope(ctx.spec, status)
        recorded = analysis.record(
            ctx.spec.analysis,
            status,
            ctx.observed.verdicts,
            status.canary_revision,
            applies.checks if applies else (),
        )
        if recorded is not status:
            return Transition(recorded)
        if ctx.spec.strategy.canary is not None:
            return canary.advance(ctx, status)
        return bluegreen.advance(ctx, status)
    if stable is None:
        return steady.first_deployment(ctx, status)
    if target == stable or (hold is not None and hold.revision == target):
        watched = drift.watch(ctx, status)
        return watched if watched is not None else steady.serving(ctx, status)
    return transitions.start(ctx, status)


def _undo_lost(status: ModelDeploymentStatus) -> Transition:
    revision = status.canary_revision
    return Transition(
        # (The wait stays as it was: it names the lost revision, which nothing reads.)
        status.model_copy(update={**transitions.IDLE, "readiness_wait": status.readiness_wait}),
        (Event(Reason.UNDO_FAILED, f"undo stopped: Deployment of {revision} is gone", "Warning"),),
    )


def _finish(
    ctx: Context,
    status: ModelDeploymentStatus,
    settled: Settled,
    events: tuple[Event, ...],
) -> Plan:
    replicas = dict(settled.replicas)
    requeue = settled.requeue_after
    pending = []
    for scale_down in status.pending_scale_downs:
        running = ctx.observed.revision(scale_down.revision)
        if (
            running is None
            or scale_down.revision in (status.stable_revision, status.canary_revision)
            or ctx.now >= scale_down.not_before
        ):
            continue
        replicas.setdefault(scale_down.revision, running.replicas)
        pending.append(scale_down)
        requeue = gating.earliest(requeue, (scale_down.not_before - ctx.now).total_seconds())
    for entry in status.history:
        replicas.setdefault(entry.revision, 0)
    if ctx.observed.revision(ctx.target) is not None:
        replicas.setdefault(ctx.target, 0)
    answering = scale.serving(settled)
    new_status = status.model_copy(
        update={
            "phase": settled.phase,
            "observed_generation": ctx.observed.generation,
            "canary_weight": settled.weight,
            "replicas": scale.replicas(ctx.observed, answering),
            "selector": scale.selector(ctx.observed.name, answering),
            "traffic_routing": routing.status(ctx.spec, ctx.observed),
            "pending_scale_downs": tuple(pending),
            # Written so that readers (the CLI) show them rather than recompute them.
            "stage": stages.written_stage(ctx.spec, status),
            "step_timer": stages.step_timer(ctx.spec, status),
            "readiness_wait": progress.with_deadline(ctx.spec, status),
            "reason": settled.reason.reason,
            "message": settled.reason.message,
            "conditions": conditions_for(
                settled.phase,
                settled.reason,
                ctx.observed.generation,
                status.conditions,
                ctx.now,
                status.drift,
            ),
        }
    )
    # Retraining runs beside the rollout: it starts Jobs, never pods that serve.
    trained = retraining.step(ctx, new_status)
    return Plan(
        actions=_actions(ctx, replicas, settled) + trained.actions,
        new_status=trained.status,
        reason=settled.reason,
        requeue_after=gating.earliest(requeue, trained.requeue_after),
        events=events + trained.events,
        reason_changed=settled.reason.reason != status.reason,
    )


def _actions(ctx: Context, replicas: Mapping[str, int], settled: Settled) -> tuple[Action, ...]:
    """Only what differs from the observed world, scale-ups before scale-downs."""
    observed = ctx.observed
    ups: list[Action] = []
    downs: list[Action] = []
    deletes: list[Action] = []
    for revision, wanted in replicas.items():
        running = observed.revision(revision)
        if running is None:
            if revision == ctx.target:
                ups.append(EnsureRevision(revision, wanted))
            continue
        if running.replicas == wanted:
            continue
        action: Action = (
            EnsureRevision(revision, wanted)
            if revision == ctx.target
            else ScaleRevision(revision, wanted)
        )
        (ups if wanted > running.replicas else downs).append(action)
    for running in observed.revisions:
        if running.revision in replicas:
            continue
        if running.replicas > 0:
            downs.append(ScaleRevision(running.revision, 0))
        else:
            deletes.append(DeleteRevision(running.revision))
    route_changes: list[Action] = []
    for role, routed in settled.routes.items():
        weights = settled.split if routed is None else ()
        if (
            role not in observed.routes
            or observed.routes[role] != routed
            or (role in observed.route_weights and observed.route_weights[role] != weights)
        ):
            route_changes.append(RouteService(role, routed, weights))
    names = tuple(route.name for route in settled.header_routes)
    if observed.header_routes is not None and observed.header_routes != names:
        canary = settled.routes.get("canary") if names else None
        route_changes.append(SetHeaderRoutes(settled.header_routes, canary))
    if observed.mirror != settled.mirror:
        route_changes.append(SetMirror(settled.mirror))
    autoscaler: list[Action] = []
    if ctx.spec.autoscaling is not None and observed.autoscaler in ("absent", "stale"):
        autoscaler.append(EnsureAutoscaler())
    elif ctx.spec.autoscaling is None and observed.autoscaler in ("current", "stale"):
        autoscaler.append(DeleteAutoscaler())
    return (*ups, *route_changes, *downs, *deletes, *autoscaler)


def _invalid(
    problems: list[str],
    status: ModelDeploymentStatus,
    generation: int,
    now: datetime,
    why: Reason = Reason.INVALID_SPEC,
    requeue_after: float | None = None,
) -> Plan:
    reason = Explanation(why, "; ".join(problems))
    new_status = status.model_copy(
        update={
            "phase": "Degraded",
            "observed_generation": generation,
            "reason": reason.reason,
            "message": reason.message,
            "conditions": conditions_for(
                "Degraded", reason, generation, status.conditions, now, status.drift
            ),
        }
    )
    return Plan(
        actions=(),
        new_status=new_status,
        reason=reason,
        requeue_after=requeue_after,
        reason_changed=status.reason != reason.reason,
    )
