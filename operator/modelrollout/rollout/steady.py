"""No rollout in flight: the first deployment, and a stable revision serving."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelrollout.api.reasons import Reason
from modelrollout.rollout import clock, measurement, transitions
from modelrollout.rollout import progress as deadline
from modelrollout.rollout.observed import SERVICE_ROLES
from modelrollout.rollout.outcome import Event, Explanation, Settled, Transition
from modelrollout.rollout.retraining import retrains_on

if TYPE_CHECKING:
    from modelrollout.api import ModelDeploymentStatus, Phase
    from modelrollout.rollout.context import Context
    from modelrollout.rollout.outcome import StageResult


def first_deployment(ctx: Context, status: ModelDeploymentStatus) -> StageResult:
    """Nothing serves yet, so there is nothing to protect: no canary, just wait for ready.

    Past the progress deadline it is Degraded, with nothing to roll back to; it
    becomes Healthy by itself if the pods get ready after all.
    """
    revision, version = ctx.target, ctx.spec.model.release
    available = ctx.observed.available(revision)
    if available >= ctx.replicas:
        return Transition(
            status.model_copy(
                update={
                    **transitions.serving(ctx, status, revision, version, source="Spec"),
                    "readiness_wait": None,
                }
            ),
            (Event(Reason.DEPLOYED, f"revision {revision} (version {version}) deployed"),),
        )
    waited = deadline.watch(ctx, status, revision, ctx.replicas)
    if isinstance(waited, Transition):
        return waited
    phase: Phase = "Progressing"
    reason = Explanation(
        Reason.DEPLOYING,
        f"deploying revision {revision} (version {version}): "
        f"{available}/{ctx.replicas} replicas available{deadline.note(ctx, status, revision)}",
    )
    if isinstance(waited, deadline.Exceeded):
        phase, reason = (
            "Degraded",
            Explanation(
                Reason.PROGRESS_DEADLINE_EXCEEDED,
                f"revision {revision} (version {version}): {waited.message}; no stable "
                "revision to roll back to: fix the spec, or the pods",
            ),
        )
    return Settled(
        replicas={revision: ctx.replicas},
        routes=dict.fromkeys(SERVICE_ROLES, revision),
        phase=phase,
        reason=reason,
        requeue_after=deadline.requeue(ctx, status, revision),
    )


def serving(ctx: Context, status: ModelDeploymentStatus) -> Settled:
    """The stable revision takes all traffic; every Service points at it."""
    stable, version = status.stable_revision, status.stable_version
    assert stable is not None, "serving without a stable revision"
    available = ctx.observed.available(stable)
    counts = f"{available}/{ctx.replicas} replicas available"
    hold = status.hold
    phase: Phase
    if hold is not None and Reason(hold.reason) != Reason.UNDONE:  # a rollback: the revision failed
        phase, reason = (
            "Degraded",
            Explanation(
                Reason(hold.reason),
                f"{hold.message}; serving stable revision {stable} (version {version}), {counts}. "
                f"Change the spec or run `retry` to roll out revision {hold.revision} again",
            ),
        )
    elif available < ctx.replicas:
        phase, reason = (
            "Progressing",
            Explanation(Reason.SCALING, f"revision {stable} (version {version}): {counts}"),
        )
    elif hold is not None:
        phase, reason = (
            "Healthy",
            Explanation(
                Reason.UNDONE,
                f"serving revision {stable} (version {version}) by undo, {counts}; spec revision "
                f"{hold.revision} is held until the spec changes or `retry`",
            ),
        )
    elif status.drift is not None:
        drift = status.drift
        phase, reason = (
            "Healthy",
            Explanation(
                Reason.DRIFTED,
                f"revision {stable} (version {version}) serves all traffic, {counts}; "
                f"drifting since {clock.stamp(drift.since)}: {drift.message}. "
                + (
                    "Retraining runs on it (status.retraining)"
                    if retrains_on(ctx.spec.retraining, drift.metric)
                    else "Roll out a corrected model to replace it"
                ),
            ),
        )
    else:
        phase, reason = (
            "Healthy",
            Explanation(Reason.AVAILABLE, f"revision {stable} (version {version}): {counts}"),
        )
    # While Healthy the drift watch measures the stable revision every interval.
    watching = measurement.watches_drift(ctx.spec, phase)
    return Settled(
        replicas={stable: ctx.replicas},
        routes=dict.fromkeys(SERVICE_ROLES, stable),
        phase=phase,
        reason=reason,
        requeue_after=ctx.analysis_interval if watching else None,
    )
