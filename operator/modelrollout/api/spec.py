"""The ModelDeployment spec as pydantic models (DESIGN.md section 3).

Field names and defaults mirror crds/modeldeployment.yaml; the CRD is what the
API server enforces, these models are how the operator reads an object. They
forbid unknown fields so a typo that slipped past an older CRD is reported,
not ignored. Rules the CRD states in CEL are restated here so that a spec read
from a file (the CLI, the tests) is judged the same way.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from modelrollout.api.durations import DURATION_PATTERN, parse_duration

MAX_NAME_LENGTH = 253
MAX_STEPS = 50
MAX_METRICS = 20
MAX_QUERY_LENGTH = 4096
MAX_HISTORY_LIMIT = 50
MAX_PROGRESS_DEADLINE_SECONDS = 86400

# A variable in a metric query: `{{ name }}`, spaces allowed inside the braces.
QUERY_VARIABLE = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")
# Variables a metric query may use as {{ name }} (DESIGN.md section 3).
QUERY_VARIABLES = frozenset(
    {
        "namespace",
        "name",
        "revision",
        "canaryRevision",
        "stableRevision",
        "version",
        "canaryVersion",
        "stableVersion",
        "interval",
    }
)


class SpecModel(BaseModel):
    """Base of every spec part: camelCase on the wire, immutable, typos rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class ModelRef(SpecModel):
    """Which model the servers load; a change of any field is a new revision."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    version: str = Field(min_length=1, max_length=63)
    uri: str | None = Field(default=None, max_length=2048)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class ServicePorts(SpecModel):
    port: int = Field(default=80, ge=1, le=65535)
    target_port: int | str = Field(default="http")


class PauseStep(SpecModel):
    """A pause; without `duration` it lasts until `promote`."""

    duration: str | None = Field(default=None, pattern=DURATION_PATTERN, max_length=64)

    @property
    def seconds(self) -> float | None:
        return None if self.duration is None else parse_duration(self.duration)


class CanaryStep(SpecModel):
    """One step: exactly one of `setWeight` or `pause`."""

    set_weight: int | None = Field(default=None, ge=0, le=100)
    pause: PauseStep | None = None

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> CanaryStep:
        if (self.set_weight is None) == (self.pause is None):
            raise ValueError("each step sets exactly one of setWeight or pause")
        return self


class GatewayAPIRouting(SpecModel):
    http_route: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)


class TrafficRouting(SpecModel):
    gateway_api: GatewayAPIRouting = Field(alias="gatewayAPI")


class CanaryStrategy(SpecModel):
    steps: tuple[CanaryStep, ...] = Field(min_length=1, max_length=MAX_STEPS)
    traffic_routing: TrafficRouting | None = None

    @field_validator("steps")
    @classmethod
    def _weights_never_decrease(cls, steps: tuple[CanaryStep, ...]) -> tuple[CanaryStep, ...]:
        weights = [step.set_weight for step in steps if step.set_weight is not None]
        if weights != sorted(weights):
            raise ValueError(f"setWeight must not decrease from one step to the next: {weights}")
        return steps


class BlueGreenStrategy(SpecModel):
    preview_replicas: int = Field(default=1, ge=1, le=1000)
    # None: the preview waits for `promote`.
    auto_promotion_seconds: int | None = Field(default=None, ge=0, le=86400)
    scale_down_delay_seconds: int = Field(default=30, ge=0, le=86400)


class Strategy(SpecModel):
    canary: CanaryStrategy | None = None
    blue_green: BlueGreenStrategy | None = None

    @model_validator(mode="after")
    def _exactly_one_strategy(self) -> Strategy:
        if (self.canary is None) == (self.blue_green is None):
            raise ValueError("set exactly one of strategy.canary or strategy.blueGreen")
        return self


class SecretKeyRef(SpecModel):
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    key: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)


class PrometheusProvider(SpecModel):
    address: str = Field(pattern=r"^https?://", max_length=2048)
    bearer_token_secret_ref: SecretKeyRef | None = None
    ca_secret_ref: SecretKeyRef | None = None


class WebhookCheck(SpecModel):
    """An HTTP endpoint asked once per interval; a non-2xx answer is a failed measurement."""

    url: str = Field(pattern=r"^https?://", max_length=2048)
    timeout_seconds: int = Field(default=10, ge=1, le=300)


class Metric(SpecModel):
    """One measurement and its acceptance bounds, absolute or relative to stable."""

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    provider: Literal["prometheus"] = "prometheus"
    query: str = Field(min_length=1, max_length=MAX_QUERY_LENGTH)
    min_value: float | None = Field(default=None, alias="min")
    max_value: float | None = Field(default=None, alias="max")
    compare_to: Literal["stable"] | None = None
    max_increase: float | None = Field(default=None, ge=0)
    max_decrease: float | None = Field(default=None, ge=0)
    # Measured and reported, never decides the rollout.
    dry_run: bool = False

    @model_validator(mode="after")
    def _has_a_bound(self) -> Metric:
        relative = self.max_increase is not None or self.max_decrease is not None
        if relative and self.compare_to is None:
            raise ValueError("maxIncrease/maxDecrease need compareTo: stable")
        if self.min_value is None and self.max_value is None and not relative:
            raise ValueError(
                "give the metric a bound: min and/or max, or compareTo: stable "
                "with maxIncrease and/or maxDecrease"
            )
        if (
            self.min_value is not None
            and self.max_value is not None
            and self.min_value > self.max_value
        ):
            raise ValueError(f"min {self.min_value} is greater than max {self.max_value}")
        return self


class Analysis(SpecModel):
    interval: str = Field(default="30s", pattern=DURATION_PATTERN, max_length=64)
    # A metric fails the rollout when its failures exceed this; 1 tolerates one
    # noisy measurement while still rolling back within two intervals.
    failure_limit: int = Field(default=1, ge=0, le=100)
    # Query errors (Prometheus down, bad PromQL) tolerated in a row before the
    # rollout fails; 4 rides out a Prometheus restart at the default interval.
    consecutive_error_limit: int = Field(default=4, ge=0, le=100)
    on_no_data: Literal["Pause", "Fail", "Ignore"] = "Pause"
    prometheus: PrometheusProvider | None = None
    webhook: WebhookCheck | None = None
    metrics: tuple[Metric, ...] = Field(default=(), max_length=MAX_METRICS)

    @property
    def interval_seconds(self) -> float:
        return parse_duration(self.interval)

    @property
    def configured(self) -> bool:
        """False when there is nothing to measure: analysis then always passes."""
        return bool(self.metrics) or self.webhook is not None

    @model_validator(mode="after")
    def _consistent(self) -> Analysis:
        names = [metric.name for metric in self.metrics]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"metric names must be unique; repeated: {', '.join(duplicates)}")
        if self.prometheus is None and any(m.provider == "prometheus" for m in self.metrics):
            raise ValueError("prometheus metrics need analysis.prometheus.address")
        if self.interval_seconds <= 0:
            raise ValueError("interval must be longer than 0s")
        return self


class WebhookNotification(SpecModel):
    """A JSON POST on rollback and on drift; the URL is a secret (Slack's URLs are)."""

    url_secret_ref: SecretKeyRef
    # json: the whole event as an object; slack: {"text": ...}, which Slack,
    # Mattermost and Microsoft Teams incoming webhooks accept.
    format: Literal["json", "slack"] = "json"
    timeout_seconds: int = Field(default=10, ge=1, le=300)


class Notifications(SpecModel):
    webhook: WebhookNotification | None = None


class Rollback(SpecModel):
    # Off: a failing analysis halts the rollout (Degraded) and waits for abort or promote.
    automatic: bool = True


class ModelDeploymentSpec(SpecModel):
    replicas: int = Field(default=1, ge=0, le=10000)
    model: ModelRef
    # A PodTemplateSpec, kept as the user wrote it; the executor builds from it.
    template: dict[str, Any]
    service: ServicePorts = ServicePorts()
    strategy: Strategy
    analysis: Analysis | None = None
    rollback: Rollback = Rollback()
    notifications: Notifications = Notifications()
    # Old revisions kept (scaled to 0) for `undo`, beyond the one serving.
    revision_history_limit: int = Field(default=10, ge=0, le=MAX_HISTORY_LIMIT)
    # How long the revision being rolled out may have fewer available pods than
    # its step asks for before the rollout stops (and rolls back when
    # rollback.automatic). 600 s as Argo Rollouts, Flagger and Deployments have
    # it: long enough for a large image pull and a model load, short enough that
    # a crash loop does not sit unnoticed for an afternoon.
    progress_deadline_seconds: int = Field(default=600, ge=1, le=MAX_PROGRESS_DEADLINE_SECONDS)

    @field_validator("template")
    @classmethod
    def _template_has_containers(cls, template: dict[str, Any]) -> dict[str, Any]:
        pod_spec = template.get("spec")
        containers = pod_spec.get("containers") if isinstance(pod_spec, dict) else None
        if not isinstance(containers, list) or not containers:
            raise ValueError("template.spec.containers must list at least one container")
        for index, container in enumerate(containers):
            if not isinstance(container, dict) or not container.get("name"):
                raise ValueError(f"template.spec.containers[{index}] needs a name")
            if not container.get("image"):
                raise ValueError(f"template.spec.containers[{index}] needs an image")
        return template
