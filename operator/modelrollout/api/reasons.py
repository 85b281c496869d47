"""Every reason the operator gives, in one StrEnum.

The same CamelCase words are status.reason, every condition's reason, the
Kubernetes Events' reasons, the `reason` of a notification and of the
rollback metrics' labels: users' alerts, `kubectl get events` filters and
notification consumers match them, so they are an API. As free strings they
were spelled in several modules and drifted (a rollback reason no code emitted
was still counted). A StrEnum member equals its string, so what older
operators wrote reads the same.
"""

from __future__ import annotations

from enum import StrEnum, unique
from typing import Final, cast, get_args

from modelrollout.api.status import HoldReason


@unique
class Reason(StrEnum):
    # Why the object is in its phase (status.reason and the conditions).
    INVALID_SPEC = "InvalidSpec"
    # spec.model.registry could not be resolved: nothing changes until it can.
    REGISTRY_UNAVAILABLE = "RegistryUnavailable"
    REGISTRY_VERSION_REJECTED = "RegistryVersionRejected"
    # spec.autoscaling cannot own its HPA (one of that name is someone else's, or
    # the operator may not read HPAs): nothing changes until it can.
    AUTOSCALER_CONFLICT = "AutoscalerConflict"
    AUTOSCALER_FORBIDDEN = "AutoscalerForbidden"
    DEPLOYING = "Deploying"
    SCALING = "Scaling"
    AVAILABLE = "Available"
    WAITING_FOR_CANARY = "WaitingForCanary"
    PAUSE_STEP = "PauseStep"
    SHADOWING = "Shadowing"
    PROMOTING = "Promoting"
    PREVIEW_STARTING = "PreviewStarting"
    PREVIEWING = "Previewing"
    SCALING_UP = "ScalingUp"
    VERIFYING = "Verifying"
    AWAITING_PROMOTION = "AwaitingPromotion"
    PAUSED_BY_USER = "PausedByUser"
    WAITING_FOR_ANALYSIS = "WaitingForAnalysis"
    ANALYSIS_FAILED = "AnalysisFailed"
    ANALYSIS_ERROR = "AnalysisError"
    ANALYSIS_INCONCLUSIVE = "AnalysisInconclusive"
    ANALYSIS_UNAVAILABLE = "AnalysisUnavailable"
    ANALYSIS_NO_DATA = "AnalysisNoData"
    # The Gateway API router: the route cannot carry the weights, or is not seen to yet.
    ROUTE_INVALID = "RouteInvalid"
    ROUTE_REJECTED = "RouteRejected"
    AWAITING_ROUTE = "AwaitingRoute"
    # Why a spec revision is held back: the rollbacks, and an undo.
    ROLLED_BACK = "RolledBack"
    ABORTED = "Aborted"
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    UNDONE = "Undone"
    # The drift watch (also the Drifted condition's reasons).
    DRIFTED = "Drifted"
    DRIFT_RECOVERED = "DriftRecovered"
    NO_DRIFT = "NoDrift"
    # Transitions, announced once as Events.
    DEPLOYED = "Deployed"
    ROLLOUT_STARTED = "RolloutStarted"
    ROLLOUT_SUPERSEDED = "RolloutSuperseded"
    STEP_COMPLETED = "StepCompleted"
    PREVIEW_READY = "PreviewReady"
    SHADOW_PASSED = "ShadowPassed"
    SWITCHED = "Switched"
    PROMOTED = "Promoted"
    UNDO_FAILED = "UndoFailed"
    STABLE_MISSING = "StableMissing"
    COMMAND_APPLIED = "CommandApplied"
    COMMAND_REJECTED = "CommandRejected"
    # Retraining runs (spec.retraining), announced as Events.
    RETRAINING_STARTED = "RetrainingStarted"
    RETRAINING_ACCEPTED = "RetrainingAccepted"
    RETRAINING_REJECTED = "RetrainingRejected"
    RETRAINING_FAILED = "RetrainingFailed"
    RETRAINING_DEFERRED = "RetrainingDeferred"
    # The handlers' own.
    RECONCILE_ERROR = "ReconcileError"
    NOTIFICATION_FAILED = "NotificationFailed"


# A rollout undone: traffic back to stable and the revision held
# (status.lastRollback.reason, the rollback's Event, the rollback metric's label).
# An undo that is stopped is `Aborted`; `Undone` holds a revision but rolls nothing back.
ROLLBACK_REASONS: Final = frozenset(
    {Reason.ROLLED_BACK, Reason.ABORTED, Reason.PROGRESS_DEADLINE_EXCEEDED}
)
# The ones nobody asked for (a manual `abort` is known to whoever ran it).
AUTOMATIC_ROLLBACK_REASONS: Final = ROLLBACK_REASONS - {Reason.ABORTED}
HOLD_REASONS: Final = ROLLBACK_REASONS | {Reason.UNDONE}
# status.hold.reason is a Literal (the CRD's enum is generated from it): the two must agree.
assert {str(reason) for reason in HOLD_REASONS} == set(get_args(HoldReason))


def hold_reason(reason: Reason) -> HoldReason:
    """`reason` as status.hold.reason (and lastRollback.reason) stores it."""
    assert reason in HOLD_REASONS, f"{reason} holds no revision"
    return cast("HoldReason", str(reason))


# How a retraining run ended (each notified, like a rollback).
RETRAINING_OUTCOME_REASONS: Final = frozenset(
    {Reason.RETRAINING_ACCEPTED, Reason.RETRAINING_REJECTED, Reason.RETRAINING_FAILED}
)

ANALYSIS_REASONS: Final = frozenset(
    {
        Reason.ANALYSIS_FAILED,
        Reason.ANALYSIS_ERROR,
        Reason.ANALYSIS_INCONCLUSIVE,
        Reason.ANALYSIS_UNAVAILABLE,
        Reason.ANALYSIS_NO_DATA,
    }
)
