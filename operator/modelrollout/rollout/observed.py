"""What the I/O layer saw of the world, handed to the decision core as plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from modelrollout.api import RegistryVersion, Verdict

ServiceRole = Literal["main", "canary", "preview"]
SERVICE_ROLES: tuple[ServiceRole, ...] = ("main", "canary", "preview")


PodCauseKind = Literal[
    "waiting", "terminated", "unschedulable", "readiness", "failed", "not-created", "starting"
]


@dataclass(frozen=True)
class PodCause:
    """Why one pod of a revision is not ready, as its status tells (see kube/pods.py).

    kind:
      waiting       a container waits: `reason` is Kubernetes' (ImagePullBackOff,
                    ErrImagePull, CrashLoopBackOff, CreateContainerConfigError...)
      terminated    a container's last run ended (lastState.terminated): `reason`
                    (Error, OOMKilled...) and `exit_code`
      unschedulable PodScheduled=False: `message` is the scheduler's
      readiness     every container runs, but one is not ready: its probe fails
      failed        the pod itself failed (phase Failed: Evicted, ...)
      not-created   the ReplicaSet could not create pods (the Deployment's
                    ReplicaFailure condition: quota, admission...)
      starting      nothing wrong yet (ContainerCreating, PodInitializing, pending)
    A waiting container that crashed before (CrashLoopBackOff) carries its last
    termination too (`exit_code`, `last_reason`, `last_message`). Messages arrive
    cut short, on one line, with the pod's literal env values blanked out.
    """

    kind: PodCauseKind
    reason: str = ""
    message: str = ""
    container: str | None = None
    exit_code: int | None = None
    last_reason: str = ""
    last_message: str = ""

    def describe(self) -> str:
        """One phrase naming the cause, for status messages and the CLI."""
        where = f"container {self.container}" if self.container else "a container"
        match self.kind:
            case "unschedulable":
                return "pods unschedulable" + (f": {self.message}" if self.message else "")
            case "readiness":
                return "readiness probe not passing" + (f" ({where})" if self.container else "")
            case "terminated":
                return _exited(where, self.exit_code, self.reason, self.message)
            case "waiting" if self.exit_code is not None:
                return f"{self.reason}: " + _exited(
                    where, self.exit_code, self.last_reason, self.last_message
                )
        return f"{self.reason}: {self.message}" if self.message else self.reason or "pending"


def _exited(where: str, exit_code: int | None, reason: str, message: str) -> str:
    code = "" if exit_code is None else f" with code {exit_code}"
    return (
        f"{where} exited{code}"
        + (f" ({reason})" if reason else "")
        + (f": {message}" if message else "")
    )


@dataclass(frozen=True)
class PodsObservation:
    """The pods of one revision: how many are ready, how many not, and the most
    telling cause among those that are not (None when none says anything)."""

    ready: int = 0
    not_ready: int = 0
    cause: PodCause | None = None

    def describe(self) -> str:
        """ "0/2 ready: ImagePullBackOff: Back-off pulling image ..." """
        counts = f"{self.ready}/{self.ready + self.not_ready} ready"
        return f"{counts}: {self.cause.describe()}" if self.cause else counts


@dataclass(frozen=True)
class RevisionObservation:
    """One `<md-name>-<revision>` Deployment that exists.

    `replicas` is the Deployment's spec.replicas (what was asked), the others
    come from its status. `pods` is what its pods say; None when they were not
    read (the observer reads them only while some revision lacks available pods).
    """

    revision: str
    version: str
    replicas: int
    ready_replicas: int = 0
    available_replicas: int = 0
    created_at: datetime | None = None
    pods: PodsObservation | None = None


@dataclass(frozen=True)
class MetricVerdict:
    """The latest measurement of one analysis check (a metric, or the webhook).

    `measured_at` identifies the measurement: the core counts each one once.
    `revision` is the revision measured: the core counts a measurement only for
    the revision it judges (the rollout's during a rollout, the stable one while
    serving), so a measurement of one is never taken for the other. None: the
    revision being judged.
    """

    verdict: Verdict
    measured_at: datetime
    value: float | None = None
    threshold: str | None = None
    message: str = ""
    revision: str | None = None


RouteVerdict = Literal["yes", "no", "unknown"]


@dataclass(frozen=True)
class RouteCheck:
    """What the gateway reports of the HTTPRoute(s) a router writes exact weights to.

    verdict:
      yes      every route exists, sends traffic to `<name>`, and each parent's
               controller reports Accepted and ResolvedRefs True for the
               generation last written
      no       a route is missing, names no rule for `<name>`, or a controller
               reports a condition False: `reason` (a Reason's value) and
               `message` name the route, the parent and the condition
      unknown  no controller reports status for that generation (yet)
    """

    verdict: RouteVerdict
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class Mirror:
    """Shadow traffic as the model servers are told it (the `<name>-shadow`
    ConfigMap): the pods of `champion` copy `percent`% of their requests to the
    `<name>-canary` Service, which selects `challenger`."""

    percent: int
    champion: str
    challenger: str


RetrainingJobState = Literal["Running", "Succeeded", "Failed"]


@dataclass(frozen=True)
class RetrainingJobObservation:
    """One retraining Job of this ModelDeployment (labelled with its run number).

    `exit_code` and `message` are its training container's last termination
    (`message` is the termination message: `modelrollout retrain` writes its
    outcome there as JSON). `reason` is the Job's failure condition reason
    (BackoffLimitExceeded, DeadlineExceeded, ...) and `detail` its message.
    """

    name: str
    number: int
    state: RetrainingJobState
    exit_code: int | None = None
    message: str = ""
    reason: str = ""
    detail: str = ""
    finished_at: datetime | None = None


# The HPA named after the ModelDeployment: none, the operator's made from the spec
# as it is (current) or as it was (stale), someone else's, or not readable (RBAC).
AutoscalerState = Literal["absent", "current", "stale", "foreign", "forbidden"]


@dataclass(frozen=True)
class Observed:
    """The world as seen just before planning.

    `revisions` must list every Deployment of this ModelDeployment: the core
    deletes what it does not know and treats a missing stable Deployment as gone.
    `routes` maps each Service that exists to the revision its selector pins
    (None: every revision of this ModelDeployment); a role left out is a Service
    to create, so an executor that does not read Services back may pass {} and
    receive a RouteService for each role on every plan.
    `route_weights` maps a role to the shares its router reads back, for routers
    that set exact weights; a role left out is one whose shares the router cannot
    read (Service selectors), and only its revision is compared.
    `command` is the raw `modelrollout.io/command` annotation, if any.
    `registry` is what spec.model.registry resolved to: history records it with
    the revision it promotes.
    `registry_alias` is the alias spec.model.registry tracks (the spec the core
    plans pins the version it resolved to, without the alias).
    `retraining_jobs` lists this object's retraining Jobs.
    `route_check` is what the gateway reports of the routes, for routers that set
    exact weights (None: Service selectors, which nothing but kube-proxy reads).
    `header_routes` are the names of the header routes in effect, sorted (None:
    a router that has none).
    `mirror` is the shadow traffic the model servers are told to send (None: none,
    or no ConfigMap yet).
    `verdicts` maps a check name (metric name, or `WEBHOOK_CHECK`) to its latest
    measurement; empty while nothing was measured.
    """

    generation: int
    revisions: tuple[RevisionObservation, ...] = ()
    routes: Mapping[ServiceRole, str | None] = field(default_factory=dict)
    route_weights: Mapping[ServiceRole, tuple[tuple[str, int], ...]] = field(default_factory=dict)
    command: str | None = None
    verdicts: Mapping[str, MetricVerdict] = field(default_factory=dict)
    # The registry version the spec resolved to (spec.model.registry), if any.
    registry: RegistryVersion | None = None
    registry_alias: str | None = None
    retraining_jobs: tuple[RetrainingJobObservation, ...] = ()
    # The ModelDeployment's own name (it names the retraining Jobs and the pods
    # status.selector matches).
    name: str = ""
    route_check: RouteCheck | None = None
    header_routes: tuple[str, ...] | None = None
    mirror: Mirror | None = None
    # The HPA spec.autoscaling makes (None: not read).
    autoscaler: AutoscalerState | None = None

    def revision(self, revision: str | None) -> RevisionObservation | None:
        return next((r for r in self.revisions if r.revision == revision), None)

    def available(self, revision: str | None) -> int:
        found = self.revision(revision)
        return found.available_replicas if found else 0

    def ready(self, revision: str | None) -> int:
        found = self.revision(revision)
        return found.ready_replicas if found else 0
