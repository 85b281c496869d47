"""A tiny simulated cluster for driving the decision core through whole rollouts.

Not a mock: it holds Deployments and Service selectors as data, changes them only
by applying a Plan's actions, and lets a test decide when pods become ready and
how much time passes. Every plan is checked for idempotency on the way.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from modelrollout.api import (
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    RegistryVersion,
    parse_spec,
    spec_revision,
)
from modelrollout.rollout import (
    AutoscalerState,
    DeleteAutoscaler,
    DeleteRetrainingJob,
    DeleteRevision,
    EnsureAutoscaler,
    EnsureRevision,
    Event,
    MetricVerdict,
    Mirror,
    Observed,
    Plan,
    RetrainingJobObservation,
    RevisionObservation,
    RouteCheck,
    RouteService,
    RunRetrainingJob,
    ScaleRevision,
    ServiceRole,
    SetHeaderRoutes,
    SetMirror,
    plan,
)

T0 = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
CANARY_STEPS: list[dict[str, Any]] = [
    {"setWeight": 25},
    {"pause": {"duration": "60s"}},
    {"setWeight": 50},
    {"pause": {}},
]


def make_spec(
    *,
    replicas: int = 4,
    version: str = "1",
    steps: list[dict[str, Any]] | None = None,
    blue_green: dict[str, Any] | None = None,
    analysis: dict[str, Any] | None = None,
    **extra: Any,
) -> ModelDeploymentSpec:
    strategy = (
        {"blueGreen": blue_green}
        if blue_green is not None
        else {"canary": {"steps": steps if steps is not None else CANARY_STEPS}}
    )
    raw: dict[str, Any] = {
        "replicas": replicas,
        "model": {"name": "fraud", "version": version},
        "template": {"spec": {"containers": [{"name": "server", "image": "srv:1"}]}},
        "strategy": strategy,
        **extra,
    }
    if analysis is not None:
        raw["analysis"] = analysis
    return parse_spec(raw)


@dataclass
class World:
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus = field(default_factory=ModelDeploymentStatus)
    deployments: dict[str, RevisionObservation] = field(default_factory=dict)
    routes: dict[ServiceRole, str | None] = field(default_factory=dict)
    # A router that sets exact weights (trafficRouting): the shares it reads back,
    # its header routes and what the gateway reports; None without one.
    route_weights: dict[ServiceRole, tuple[tuple[str, int], ...]] = field(default_factory=dict)
    header_routes: tuple[str, ...] | None = None
    route_check: RouteCheck | None = None
    # What the `<name>-shadow` ConfigMap tells the model servers.
    mirror: Mirror | None = None
    # The HPA named after the ModelDeployment, as the observer would report it.
    autoscaler: AutoscalerState | None = None
    verdicts: dict[str, MetricVerdict] = field(default_factory=dict)
    command: str | None = None
    # What spec.model.registry resolved to, as the handler hands it to the core.
    registry: RegistryVersion | None = None
    registry_alias: str | None = None
    # Retraining Jobs by run number, as the cluster holds them; `started` records
    # every RunRetrainingJob applied (an idempotent re-send included).
    jobs: dict[int, RetrainingJobObservation] = field(default_factory=dict)
    started: list[RunRetrainingJob] = field(default_factory=list)
    generation: int = 1
    now: datetime = T0
    events: list[Event] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def revision(self) -> str:
        return spec_revision(self.spec)

    def observed(self) -> Observed:
        return Observed(
            generation=self.generation,
            revisions=tuple(self.deployments.values()),
            routes=dict(self.routes),
            route_weights=dict(self.route_weights),
            header_routes=self.header_routes,
            route_check=self.route_check,
            mirror=self.mirror,
            autoscaler=self.autoscaler,
            command=self.command,
            verdicts=dict(self.verdicts),
            registry=self.registry,
            registry_alias=self.registry_alias,
            retraining_jobs=tuple(self.jobs.values()),
            name="fraud",
        )

    def plan(self) -> Plan:
        """Plan, check idempotency, apply the actions and keep the new status."""
        observed = self.observed()
        result = plan(self.spec, self.status, observed, self.now)
        again = plan(self.spec, result.new_status, observed, self.now)
        assert again.new_status == result.new_status, "replanning changed the status"
        assert set(again.actions) <= set(result.actions), "replanning found new actions"
        assert again.events == (), "replanning emitted events again"
        assert not again.reason_changed, "replanning announced the reason again"
        self.apply(result)
        return result

    def apply(self, result: Plan) -> None:
        for action in result.actions:
            match action:
                case EnsureRevision(revision, replicas):
                    assert revision == self.revision, "only the spec's revision may be created"
                    self._scale(revision, replicas, create_version=self.spec.model.release)
                case ScaleRevision(revision, replicas):
                    assert revision in self.deployments, f"scaling missing {revision}"
                    self._scale(revision, replicas)
                case DeleteRevision(revision):
                    self.deployments.pop(revision, None)
                case RouteService(role, revision, weights):
                    self.routes[role] = revision
                    if revision is None and self.route_check is not None:
                        self.route_weights[role] = weights
                    else:
                        self.route_weights.pop(role, None)
                case SetMirror(mirror):
                    self.mirror = mirror
                case SetHeaderRoutes(routes):
                    self.header_routes = tuple(route.name for route in routes)
                case RunRetrainingJob(name, number):
                    self.started.append(action)
                    self.jobs.setdefault(number, RetrainingJobObservation(name, number, "Running"))
                case DeleteRetrainingJob(name):
                    self.jobs = {k: j for k, j in self.jobs.items() if j.name != name}
                case EnsureAutoscaler():
                    self.autoscaler = "current"
                case DeleteAutoscaler():
                    self.autoscaler = "absent"
        self.status = result.new_status
        self.events.extend(result.events)

    def _scale(self, revision: str, replicas: int, create_version: str | None = None) -> None:
        current = self.deployments.get(revision)
        if current is None:
            assert create_version is not None
            current = RevisionObservation(revision, create_version, replicas, created_at=self.now)
        ready = min(current.ready_replicas, replicas)
        available = min(current.available_replicas, replicas)
        self.deployments[revision] = replace(
            current, replicas=replicas, ready_replicas=ready, available_replicas=available
        )

    def ready(self, revision: str | None = None) -> None:
        """Every pod asked for (of one revision, or of all) becomes ready and available."""
        for name, deployment in self.deployments.items():
            if revision is None or name == revision:
                self.deployments[name] = replace(
                    deployment,
                    ready_replicas=deployment.replicas,
                    available_replicas=deployment.replicas,
                )

    def settle(self, rounds: int = 10) -> Plan:
        """Plan and make pods ready until the world stops changing (time stands still)."""
        for _ in range(rounds):
            before = (self.status, dict(self.deployments), dict(self.routes))
            result = self.plan()
            self.ready()
            if (self.status, self.deployments, self.routes) == before and not result.actions:
                return result
        raise AssertionError(f"did not settle: {self.status.reason}: {self.status.message}")

    def wait(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def change_spec(self, **changes: Any) -> None:
        raw = self.spec.model_dump(by_alias=True, exclude_none=True, mode="json")
        model = changes.pop("model", None)
        if model:
            raw["model"] = {**raw["model"], **model}
        raw.update(changes)
        self.spec = parse_spec(raw)
        self.generation += 1

    def send(self, action: str, **options: Any) -> str:
        command_id = f"cmd-{next(self._ids)}"
        self.command = json.dumps({"id": command_id, "action": action, **options})
        return command_id

    def replicas(self) -> dict[str, int]:
        return {name: d.replicas for name, d in self.deployments.items()}

    def event_reasons(self) -> list[str]:
        return [event.reason for event in self.events]


def deployed(spec: ModelDeploymentSpec | None = None) -> World:
    """A world where `spec` (default: 4 replicas, canary) has been deployed and is Healthy."""
    world = World(spec or make_spec())
    world.settle()
    assert world.status.phase == "Healthy", world.status.message
    return world
