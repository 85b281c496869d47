"""The ModelDeployment status as pydantic models.

Everything the operator knows lives here (docs/architecture.md, "The status
contract": it never writes spec), so a restarted operator resumes each rollout
from status alone: the step, when it began, a manual pause, the last command
handled, a held revision and pending scale-downs. Unknown fields are ignored so
an older or newer operator can read what another version wrote.

These models are the source of the CRD's status schema (`make crds`,
modelrollout.api.crd): a field added here is one the API server keeps, not one
it prunes on every write. The CRD takes no defaults from here; descriptions are
what `kubectl explain` shows.
"""

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from modelrollout.api.kubeschema import list_map

Phase = Literal["Progressing", "Paused", "Healthy", "Degraded"]
ConditionType = Literal[
    "Ready", "Progressing", "Paused", "Degraded", "Reconciling", "Stalled", "Drifted"
]
ConditionStatus = Literal["True", "False", "Unknown"]
Verdict = Literal["pass", "fail", "inconclusive", "error", "nodata"]
# Why a spec revision is held back; every one but Undone is also a rollback reason
# (status.lastRollback.reason, the rollback's Event) and leaves the object Degraded.
HoldReason = Literal["Aborted", "RolledBack", "ProgressDeadlineExceeded", "Undone"]
RolloutSource = Literal["Spec", "Undo"]
CommandResult = Literal["Applied", "Rejected"]


class BlueGreenStage(StrEnum):
    """Where a blue/green rollout is (status.stage; see modelrollout.rollout.bluegreen)."""

    PREVIEW_STARTING = "PreviewStarting"
    SHADOWING = "Shadowing"
    PREVIEWING = "Previewing"
    SCALING_UP = "ScalingUp"
    VERIFYING = "Verifying"
    VERIFIED = "Verified"


class StatusModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
    )


class Condition(StatusModel):
    """A kstatus-compatible condition (metav1.Condition shape)."""

    type: ConditionType
    status: ConditionStatus
    reason: str
    message: str = ""
    last_transition_time: datetime
    observed_generation: int | None = Field(default=None, json_schema_extra={"format": "int64"})


class MetricAnalysis(StatusModel):
    """What one metric measured so far: during a rollout, of the new revision; while
    Healthy, of the stable revision (the drift watch)."""

    verdict: Verdict | None = None
    revision: str | None = Field(
        default=None, description="The revision the latest measurement was of."
    )
    value: float | None = None
    threshold: str | None = None
    message: str = ""
    measured_at: datetime | None = None
    successes: int = 0
    failures: int = 0
    inconclusive: int = 0
    errors: int = 0
    no_data: int = 0
    consecutive_errors: int = 0
    # Failed measurements since the last passing one (errors and no data leave it
    # alone): the drift watch's trigger, robust to a single noisy measurement.
    consecutive_failures: int = 0


class DriftRecord(StatusModel):
    """The stable revision breaching an analysis metric while no rollout runs."""

    revision: str
    version: str
    metric: str
    value: float | None = None
    threshold: str | None = None
    message: str = ""
    since: datetime


class RollbackRecord(StatusModel):
    """The last time a rollout was undone, by analysis or by hand."""

    revision: str
    version: str
    reason: str
    message: str = ""
    metric: str | None = None
    value: float | None = None
    threshold: str | None = None
    at: datetime


class RegistryVersion(StatusModel):
    """One model version of an MLflow registry, as its tags describe it (README:
    "Model registry"): what the operator rolled out, and what each history entry
    goes back to."""

    name: str
    version: str
    sha256: str = Field(description="The artifact's digest recorded for the version.")
    dataset_sha256: str | None = Field(
        default=None, description="The training dataset's digest recorded for the version."
    )
    dataset_rows: int | None = Field(default=None, json_schema_extra={"format": "int64"})
    task: str | None = None
    metrics: dict[str, float] = Field(
        default_factory=dict, description="The model card's held-out metrics."
    )


class RegistryStatus(StatusModel):
    """What spec.model.registry resolved to at the last reconcile, and which version
    the champion alias was last moved to."""

    alias: str | None = Field(default=None, description="The alias tracked, if any.")
    resolved: RegistryVersion
    resolved_at: datetime
    champion_alias: str
    champion_version: str | None = Field(
        default=None, description="The version the operator last moved the champion alias to."
    )
    message: str = ""


class HistoryEntry(StatusModel):
    """A revision that served all traffic. `number` only grows, like a Deployment's."""

    number: int = Field(ge=1)
    revision: str
    version: str
    promoted_at: datetime
    source: RolloutSource = "Spec"
    registry: RegistryVersion | None = Field(
        default=None, description="The registry version it served, when it came from one."
    )


class Hold(StatusModel):
    """A spec revision the operator will not roll out until the spec changes or `retry`."""

    revision: str
    reason: HoldReason
    message: str = ""
    since: datetime


class Timer(StatusModel):
    """A time the operator waits for, as it computed it, so readers show it as it is.

    `ends_at` is when it ends if the clock runs on. While `pause` stops the clock,
    `paused_seconds_left` is what is left (and `resume` moves `ends_at` on by the
    time paused).
    """

    ends_at: datetime
    paused_seconds_left: float | None = None


class ReadinessWait(StatusModel):
    """The revision being rolled out (or the first one) has fewer available pods than
    asked for: the wait spec.progressDeadlineSeconds bounds.

    `since` is when the wait began: the step that scaled the revision up, or the
    moment its pods were first seen short. `resume` moves it by the paused time, so
    a user's pause does not count. `exceeded_at` and `message` latch the verdict
    of a rollout that hit its deadline without automatic rollback: it stays
    Degraded until `abort`, `promote` or a new spec, even if the pods recover.
    """

    revision: str
    since: datetime = Field(description="When the wait began; moved on by the time paused.")
    exceeded_at: datetime | None = Field(
        default=None,
        description=(
            "The deadline passed without automatic rollback: "
            "Degraded until abort, promote or a new spec."
        ),
    )
    message: str = ""
    # When the progress deadline passes (absent in status of operators before it).
    deadline: Timer | None = None


class PendingScaleDown(StatusModel):
    """An old revision still running after a switch, to scale to 0 at `not_before`."""

    revision: str
    not_before: datetime


class LastCommand(StatusModel):
    """The last manual command handled; its id makes each command apply exactly once."""

    id: str
    action: str
    result: CommandResult
    message: str = ""
    at: datetime


RetrainingTrigger = Literal["Drift", "Schedule", "Manual"]
RetrainingOutcome = Literal["Accepted", "Rejected", "Failed"]


class RetrainingRun(StatusModel):
    """One retraining Job: why it started, against which champion, and how it ended
    (README: "Retraining")."""

    number: int = Field(ge=1)
    job: str = Field(description="The Job's name.")
    trigger: RetrainingTrigger
    cause: str = Field(description="What triggered it, in words.")
    triggered_at: datetime | None = Field(
        default=None,
        description="When its trigger happened: drift's onset, the cron tick, the command.",
    )
    started_at: datetime
    champion_version: str = Field(description="The registry version serving when it started.")
    dataset: str | None = Field(
        default=None,
        description="The registry version whose training set it was pinned to (`--dataset`).",
    )
    finished_at: datetime | None = None
    outcome: RetrainingOutcome | None = None
    message: str = ""
    candidate_version: str | None = Field(
        default=None, description="The registry version an accepted candidate got."
    )
    metric: str | None = Field(default=None, description="The metric that decided.")
    candidate: dict[str, float] = Field(
        default_factory=dict, description="The candidate's metrics on the fresh held-out rows."
    )
    champion: dict[str, float] = Field(
        default_factory=dict, description="The champion's metrics on the same rows."
    )


class RetrainingRequest(StatusModel):
    """A `retrain` command accepted and not yet started as a Job."""

    id: str
    dataset: str | None = None
    at: datetime


class DeferredTrigger(StatusModel):
    """The latest trigger that came while a run was active or cooling down:
    recorded, not stacked."""

    trigger: RetrainingTrigger
    cause: str
    at: datetime


class RetrainingStatus(StatusModel):
    active: RetrainingRun | None = None
    last: RetrainingRun | None = Field(default=None, description="The latest finished run.")
    runs: int = Field(default=0, ge=0, description="Runs started so far (names the next Job).")
    requested: RetrainingRequest | None = None
    deferred: DeferredTrigger | None = None
    deferred_count: int = Field(
        default=0, ge=0, description="Triggers recorded without starting a run."
    )
    schedule_checked_at: datetime | None = Field(
        default=None, description="Schedule ticks up to this time have been handled."
    )


class TrafficRoutingStatus(StatusModel):
    """What the Gateway API router read back at the last reconcile (trafficRouting)."""

    routes: tuple[str, ...] = Field(
        default=(), description="The HTTPRoutes (namespace/name when in another namespace)."
    )
    weights: dict[str, int] = Field(
        default_factory=dict, description="Percent per revision, as read back from the routes."
    )
    header_routes: tuple[str, ...] = Field(
        default=(), description="The header routes in effect (setHeaderRoute names)."
    )
    verified: Literal["yes", "no", "unknown"] = Field(
        default="unknown",
        json_schema_extra={"maxLength": 16},
        description="Whether the gateway reports the routes Accepted and ResolvedRefs.",
    )
    message: str = ""


class ModelDeploymentStatus(StatusModel):
    phase: Phase | None = None
    observed_generation: int | None = Field(default=None, json_schema_extra={"format": "int64"})
    stable_revision: str | None = None
    stable_version: str | None = None
    # The revision being rolled out (canary or blue/green "green"); None when idle.
    canary_revision: str | None = None
    canary_version: str | None = None
    # Canary: index into strategy.canary.steps; len(steps) means "all steps done,
    # promoting". Blue/green: the stage's number as operators before `stage` wrote
    # it (still written, so such an operator resumes at the same stage).
    current_step: int | None = None
    # Blue/green: a BlueGreenStage; a string, so a newer operator's stage still
    # parses. None for a canary, and in status written before it (see rollout.stages).
    stage: str | None = None
    # When the current step's timer ends: a timed pause, blue/green auto-promotion
    # or the verification after the switch.
    step_timer: Timer | None = None
    # When the current step began (pause deadlines and auto-promotion count from here).
    step_started_at: datetime | None = None
    # Set by `pause`; step timers are shifted by the paused time on `resume`.
    paused_at: datetime | None = None
    rollout_source: RolloutSource | None = None
    # When the current rollout began; measurements older than this are not counted.
    rollout_started_at: datetime | None = None
    canary_weight: int = Field(default=0, ge=0, le=100)
    replicas: int = Field(
        default=0,
        ge=0,
        json_schema_extra={"format": "int32"},
        description=(
            "Pods of the revisions that take client traffic now (the scale subresource's "
            "status.replicas, which an HPA or KEDA reads as the current count)."
        ),
    )
    selector: str | None = Field(
        default=None,
        json_schema_extra={"maxLength": 1024},
        description=(
            "Label selector of those pods (the scale subresource's): an autoscaler averages "
            "its per-pod metrics over the pods that answer clients."
        ),
    )
    traffic_routing: TrafficRoutingStatus | None = None
    # One condition per type (a list keyed by type, as kstatus reads it).
    conditions: tuple[Condition, ...] = Field(default=(), json_schema_extra=list_map("type"))
    analysis: dict[str, MetricAnalysis] = Field(
        default_factory=dict,
        description=(
            "Per metric, its latest measurement and counts (of the new revision during a "
            "rollout, of the stable one while Healthy)."
        ),
    )
    last_rollback: RollbackRecord | None = None
    drift: DriftRecord | None = Field(
        default=None,
        description=(
            "The stable revision breaching an analysis metric while no rollout runs "
            "(condition Drifted)."
        ),
    )
    history: tuple[HistoryEntry, ...] = Field(
        default=(), description="Revisions that served all traffic, newest first."
    )
    hold: Hold | None = Field(
        default=None,
        description="A spec revision not rolled out again until the spec changes or `retry`.",
    )
    pending_scale_downs: tuple[PendingScaleDown, ...] = ()
    readiness_wait: ReadinessWait | None = Field(
        default=None,
        description=(
            "The wait for the pods of the revision being rolled out (or the first one) "
            "that progressDeadlineSeconds bounds."
        ),
    )
    last_command: LastCommand | None = None
    registry: RegistryStatus | None = Field(
        default=None, description="What spec.model.registry resolved to (README: Model registry)."
    )
    retraining: RetrainingStatus | None = Field(
        default=None, description="Retraining runs (spec.retraining; README: Retraining)."
    )
    reason: str | None = None
    message: str = ""

    def condition(self, condition_type: ConditionType) -> Condition | None:
        return next((c for c in self.conditions if c.type == condition_type), None)

    @property
    def rollout_in_flight(self) -> bool:
        return self.canary_revision is not None
