"""The decision core: plan(spec, status, observed, now) -> Plan.

Pure (stdlib and modelrollout.api only, enforced by import-linter): the
handlers observe the world, call plan(), apply Plan.actions through the
executor and write Plan.new_status. Everything here is testable as a table of
inputs and expected outputs.
"""

from modelrollout.rollout.actions import (
    Action,
    DeleteAutoscaler,
    DeleteRetrainingJob,
    DeleteRevision,
    EnsureAutoscaler,
    EnsureRevision,
    RouteService,
    RunRetrainingJob,
    ScaleRevision,
    SetHeaderRoutes,
    SetMirror,
)
from modelrollout.rollout.analysis import WEBHOOK_CHECK
from modelrollout.rollout.bluegreen import preview_replicas
from modelrollout.rollout.canary import describe_step
from modelrollout.rollout.clock import stamp
from modelrollout.rollout.commands import command_rejection
from modelrollout.rollout.measurement import MeasurementRequest, request
from modelrollout.rollout.observed import (
    SERVICE_ROLES,
    AutoscalerState,
    MetricVerdict,
    Mirror,
    Observed,
    PodCause,
    PodCauseKind,
    PodsObservation,
    RetrainingJobObservation,
    RetrainingJobState,
    RevisionObservation,
    RouteCheck,
    RouteVerdict,
    ServiceRole,
)
from modelrollout.rollout.outcome import Event, Explanation, Plan
from modelrollout.rollout.plan import invalid_spec, plan, unresolved_model
from modelrollout.rollout.progress import with_deadline
from modelrollout.rollout.retention import (
    Retention,
    RetentionPolicy,
    StoredVersion,
    Tracker,
    decide,
    protected_versions,
)
from modelrollout.rollout.retraining import REJECTED_EXIT_CODE, champion_version
from modelrollout.rollout.shadow import current as shadow_phase
from modelrollout.rollout.stages import known_stage, step_timer
from modelrollout.rollout.validation import spec_problems

__all__ = [
    "REJECTED_EXIT_CODE",
    "SERVICE_ROLES",
    "WEBHOOK_CHECK",
    "Action",
    "AutoscalerState",
    "DeleteAutoscaler",
    "DeleteRetrainingJob",
    "DeleteRevision",
    "EnsureAutoscaler",
    "EnsureRevision",
    "Event",
    "Explanation",
    "MeasurementRequest",
    "MetricVerdict",
    "Mirror",
    "Observed",
    "Plan",
    "PodCause",
    "PodCauseKind",
    "PodsObservation",
    "Retention",
    "RetentionPolicy",
    "RetrainingJobObservation",
    "RetrainingJobState",
    "RevisionObservation",
    "RouteCheck",
    "RouteService",
    "RouteVerdict",
    "RunRetrainingJob",
    "ScaleRevision",
    "ServiceRole",
    "SetHeaderRoutes",
    "SetMirror",
    "StoredVersion",
    "Tracker",
    "champion_version",
    "command_rejection",
    "decide",
    "describe_step",
    "invalid_spec",
    "known_stage",
    "plan",
    "preview_replicas",
    "protected_versions",
    "request",
    "shadow_phase",
    "spec_problems",
    "stamp",
    "step_timer",
    "unresolved_model",
    "with_deadline",
]
