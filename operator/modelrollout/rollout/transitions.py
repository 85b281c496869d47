"""Status changes that move a rollout between its big states.

Started, superseded by a newer spec, promoted, rolled back: each returns a
Transition (the new status and the Event to emit) for plan() to continue from.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from modelrollout.api import BlueGreenStage, Hold, PendingScaleDown, RollbackRecord
from modelrollout.api.reasons import Reason, hold_reason
from modelrollout.rollout import history, stages
from modelrollout.rollout.outcome import Event, Transition

if TYPE_CHECKING:
    from modelrollout.api import ModelDeploymentStatus
    from modelrollout.api.status import RolloutSource
    from modelrollout.rollout.analysis import Judgement
    from modelrollout.rollout.context import Context

# The status fields of no rollout in flight.
IDLE = {
    "canary_revision": None,
    "canary_version": None,
    "current_step": None,
    "stage": None,
    "step_started_at": None,
    "step_timer": None,
    "paused_at": None,
    "rollout_source": None,
    "readiness_wait": None,
}


def serving(
    ctx: Context,
    status: ModelDeploymentStatus,
    revision: str,
    version: str,
    source: RolloutSource,
) -> dict[str, Any]:
    """The status fields that make `revision` the stable one, recorded in history."""
    return {
        "stable_revision": revision,
        "stable_version": version,
        "history": history.record_promotion(
            status.history,
            revision=revision,
            version=version,
            at=ctx.now,
            source=source,
            limit=ctx.spec.revision_history_limit,
            registry=ctx.observed.registry if revision == ctx.target else None,
        ),
    }


def start(ctx: Context, status: ModelDeploymentStatus) -> Transition:
    version = ctx.spec.model.release
    return Transition(
        status.model_copy(
            update={
                "canary_revision": ctx.target,
                "canary_version": version,
                **(
                    {"current_step": 0}
                    if ctx.spec.strategy.canary is not None
                    else stages.enter(BlueGreenStage.PREVIEW_STARTING)
                ),
                "step_started_at": ctx.now,
                "paused_at": None,
                "rollout_source": "Spec",
                "rollout_started_at": ctx.now,
                "analysis": {},
                "readiness_wait": None,
            }
        ),
        (
            Event(
                Reason.ROLLOUT_STARTED,
                f"rolling out revision {ctx.target} (version {version}) "
                f"to replace {status.stable_revision} (version {status.stable_version})",
            ),
        ),
    )


def supersede(ctx: Context, status: ModelDeploymentStatus) -> Transition:
    """A newer spec arrived mid-rollout: drop the in-flight revision."""
    return Transition(
        status.model_copy(update=IDLE),
        (
            Event(
                Reason.ROLLOUT_SUPERSEDED,
                f"revision {status.canary_revision} (version {status.canary_version}) "
                f"dropped: the spec now asks for revision {ctx.target} "
                f"(version {ctx.spec.model.release})",
            ),
        ),
    )


def promote(
    ctx: Context, status: ModelDeploymentStatus, *, scale_down_delay: float = 0.0
) -> Transition:
    """The rollout's revision now serves all traffic and becomes stable.

    With a delay (blue/green), the old stable keeps running that long after the
    switch so a quick rollback still finds it warm.
    """
    revision = status.canary_revision
    version = status.canary_version
    assert revision is not None and version is not None, "promote without a rollout"
    source = status.rollout_source or "Spec"
    pending = status.pending_scale_downs
    old = status.stable_revision
    if scale_down_delay > 0 and old is not None and old != revision:
        not_before = ctx.now + timedelta(seconds=scale_down_delay)
        pending = (
            *(p for p in pending if p.revision not in (old, revision)),
            PendingScaleDown(revision=old, not_before=not_before),
        )
    else:
        pending = tuple(p for p in pending if p.revision != revision)
    promoted = status.model_copy(
        update={
            **IDLE,
            **serving(ctx, status, revision, version, source),
            "pending_scale_downs": pending,
        }
    )
    what = "undo completed" if source == "Undo" else "promoted"
    return Transition(
        promoted,
        (
            Event(
                Reason.PROMOTED,
                f"revision {revision} (version {version}) {what}; serves all traffic",
            ),
        ),
    )


def roll_back(
    ctx: Context,
    status: ModelDeploymentStatus,
    *,
    reason: Reason,
    message: str,
    judgement: Judgement | None = None,
) -> Transition:
    """Send all traffic back to stable at once and hold the spec revision.

    The held revision is not rolled out again until the spec changes or `retry`.
    """
    revision = status.canary_revision
    version = status.canary_version
    assert revision is not None and version is not None, "roll back without a rollout"
    # An undo that is stopped holds the same spec revision it held before.
    held = status.hold if status.rollout_source == "Undo" else None
    hold = held or Hold(
        revision=revision, reason=hold_reason(reason), message=message, since=ctx.now
    )
    record = RollbackRecord(
        revision=revision,
        version=version,
        reason=reason,
        message=message,
        metric=judgement.check if judgement else None,
        value=judgement.value if judgement else None,
        threshold=judgement.threshold if judgement else None,
        at=ctx.now,
    )
    return Transition(
        status.model_copy(update={**IDLE, "hold": hold, "last_rollback": record}),
        (Event(reason, f"revision {revision} (version {version}): {message}", "Warning"),),
    )


def forget_missing_stable(status: ModelDeploymentStatus) -> Transition:
    """The stable Deployment was deleted behind our back: nothing to protect any more."""
    return Transition(
        status.model_copy(update={**IDLE, "stable_revision": None, "stable_version": None}),
        (
            Event(
                Reason.STABLE_MISSING,
                f"Deployment of stable revision {status.stable_revision} is gone; "
                "deploying the spec's revision directly",
                "Warning",
            ),
        ),
    )
