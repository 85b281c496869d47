"""The ModelDeployment spec as pydantic models (README: "The ModelDeployment").

These models are the source of the CRD's spec schema: `make crds` generates
crds/modeldeployment.yaml from them (modelrollout.api.crd), so every field name,
bound, default and description below is what the API server enforces and
`kubectl explain` shows. A rule the API server states in CEL sits next to the
validator that states it in Python (`json_schema_extra=cel(...)`), with the same
message, so a spec read from a file (the CLI, the tests) is judged the same way
as one applied. The models forbid unknown fields so a typo that slipped past an
older CRD is reported, not ignored.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal

from pydantic import (
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from modelrollout.api.autoscaling import Autoscaling
from modelrollout.api.base import SpecModel
from modelrollout.api.durations import DURATION_PATTERN, parse_duration
from modelrollout.api.kubeschema import cel, list_map

MAX_NAME_LENGTH = 253
MAX_STEPS = 50
MAX_METRICS = 20
MAX_QUERY_LENGTH = 4096
MAX_HISTORY_LIMIT = 50
MAX_PROGRESS_DEADLINE_SECONDS = 86400
# On the enum-valued strings CEL rules read: a bound the API server's CEL cost
# estimate can count on, whatever it makes of the enum.
MAX_ENUM_LENGTH: Final = 32

# A variable in a metric query: `{{ name }}`, spaces allowed inside the braces.
QUERY_VARIABLE = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")
# Variables a metric query may use as {{ name }} (README: "Analysis and automatic rollback").
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

# Said both by the validators below and by the API server's CEL rules.
ONE_STEP_KIND: Final = (
    "each step sets exactly one of setWeight, pause, setCanaryScale, setHeaderRoute or shadow"
)
ONE_ROUTE_FIELD: Final = "set exactly one of httpRoute or httpRoutes"
ONE_CANARY_SCALE: Final = (
    "setCanaryScale sets exactly one of replicas, weight or matchTrafficWeight"
)
MATCH_WEIGHT_IS_TRUE: Final = "matchTrafficWeight can only be true; give replicas or weight"
ONE_HEADER_MATCH: Final = (
    "a header route match is headerName with exactly one of headerValue or regex, "
    "or cookieName with cookieValue"
)
# A Kubernetes object name (RFC 1123 subdomain); a Gateway API rule name (SectionName).
DNS_SUBDOMAIN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# An HTTP header name (RFC 7230 token), as Gateway API's HTTPHeaderName.
HEADER_NAME: Final = r"^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$"
MAX_HEADER_ROUTES: Final = 8
MAX_ROUTES: Final = 8
WEIGHTS_NEVER_DECREASE: Final = "setWeight must not decrease from one step to the next"
ONE_STRATEGY: Final = "set exactly one of strategy.canary or strategy.blueGreen"
RELATIVE_NEEDS_STABLE: Final = "maxIncrease/maxDecrease need compareTo: stable"
METRIC_NEEDS_A_BOUND: Final = (
    "give the metric a bound: min and/or max, or compareTo: stable "
    "with maxIncrease and/or maxDecrease"
)
PROMETHEUS_NEEDS_ADDRESS: Final = "prometheus metrics need analysis.prometheus.address"

# What the API server checks of a PodTemplateSpec: what the template validator
# below requires (containers, each named and with an image). The rest (and the
# whole of each container) is the Deployment's to judge, so it is kept as written.
POD_TEMPLATE_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "x-kubernetes-preserve-unknown-fields": True,
    "required": ["spec"],
    "properties": {
        "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "spec": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "required": ["containers"],
            "properties": {
                "containers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                        "required": ["name", "image"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "image": {"type": "string", "minLength": 1},
                        },
                    },
                }
            },
        },
    },
}


REGISTRY_ONE_OF: Final = "model.registry sets exactly one of version or alias"
REGISTRY_EXCLUSIVE: Final = (
    "model.registry names the model's version, artifact and digest: "
    "leave model.version, model.uri and model.sha256 unset"
)
MODEL_NEEDS_VERSION: Final = "model.version is required unless model.registry is set"
# MLflow's alias rule (letters, digits, '_' and '-'; not starting with a version
# number's "v<digits>" form, which MLflow reserves), and its version numbers.
REGISTRY_ALIAS_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$"
REGISTRY_VERSION_PATTERN: Final = r"^[1-9][0-9]{0,9}$"


class RegistryModelRef(SpecModel):
    """A model version in an MLflow model registry (README: "Model registry").

    With `version` the servers load exactly that version; with `alias` the
    operator tracks the alias: a new version behind it starts a rollout, and
    status.registry says which version it resolved to.
    """

    model_config = ConfigDict(
        json_schema_extra=cel(("has(self.version) != has(self.alias)", REGISTRY_ONE_OF))
    )

    name: str = Field(
        min_length=1, max_length=256, description="The registered model's name in MLflow."
    )
    version: str | None = Field(
        default=None,
        pattern=REGISTRY_VERSION_PATTERN,
        max_length=10,
        description='A registry version number, e.g. "3". Quote numbers in YAML.',
    )
    alias: str | None = Field(
        default=None,
        pattern=REGISTRY_ALIAS_PATTERN,
        max_length=63,
        description="An alias to track, e.g. candidate: each version it points to rolls out.",
    )
    uri: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://",
        description=(
            "The MLflow tracking server, as the model servers reach it (their "
            "MLFLOW_TRACKING_URI); default: the operator's MLFLOW_TRACKING_URI."
        ),
    )
    champion_alias: str | None = Field(
        default=None,
        pattern=REGISTRY_ALIAS_PATTERN,
        max_length=63,
        description=(
            "The alias the operator moves to each version it promotes, so the registry "
            'says what serves (default "champion").'
        ),
    )

    @model_validator(mode="after")
    def _one_of(self) -> RegistryModelRef:
        if (self.version is None) == (self.alias is None):
            raise ValueError(REGISTRY_ONE_OF)
        return self

    @property
    def champion(self) -> str:
        return self.champion_alias or DEFAULT_CHAMPION_ALIAS


DEFAULT_CHAMPION_ALIAS: Final = "champion"


class ModelRef(SpecModel):
    """Which model the servers load; a change of any field is a new revision."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "!has(self.registry) || "
                "(!has(self.version) && !has(self.uri) && !has(self.sha256))",
                REGISTRY_EXCLUSIVE,
            ),
            ("has(self.registry) || has(self.version)", MODEL_NEEDS_VERSION),
        )
    )

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    version: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        description=(
            'The release, e.g. "7". Quote numbers in YAML. Required unless `registry` '
            "is set (then it is the registry version)."
        ),
    )
    uri: str | None = Field(
        default=None,
        max_length=2048,
        description="Artifact location handed to the server as MODEL_URI.",
    )
    sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="The server refuses an artifact with another digest.",
    )
    registry: RegistryModelRef | None = Field(
        default=None,
        description=(
            "Load a version from an MLflow model registry instead of `uri`: the operator "
            "resolves it (and tracks an alias), the servers verify the registered digest."
        ),
    )

    @model_validator(mode="after")
    def _source(self) -> ModelRef:
        if self.registry is not None:
            if self.version is not None or self.uri is not None or self.sha256 is not None:
                raise ValueError(REGISTRY_EXCLUSIVE)
        elif self.version is None:
            raise ValueError(MODEL_NEEDS_VERSION)
        return self

    @property
    def release(self) -> str:
        """The version the servers, labels and status carry: set by the spec, or
        by the operator from the registry (`resolved`) before anything reads it."""
        if self.version is None:
            raise ValueError("the registry model has not been resolved to a version")
        return self.version

    def resolved(self, version: str, sha256: str, tracking_uri: str) -> ModelRef:
        """This reference pinned to one registry version, as the servers load it.

        Built without validation on purpose: it carries the version, URI and digest
        the user may not write next to `registry`. The revision hash covers this
        form, so tracking an alias and pinning the version it points to are the
        same revision.
        """
        if self.registry is None:
            return self
        pinned = RegistryModelRef.model_construct(
            name=self.registry.name,
            version=version,
            alias=None,
            uri=tracking_uri,
            champion_alias=None,
        )
        return self.model_copy(
            update={
                "version": version,
                "uri": f"models:/{self.registry.name}/{version}",
                "sha256": sha256,
                "registry": pinned,
            }
        )


class ServicePorts(SpecModel):
    port: int = Field(default=80, ge=1, le=65535)
    target_port: int | str = Field(default="http")


class PauseStep(SpecModel):
    """A pause; without `duration` it lasts until `promote`."""

    duration: str | None = Field(default=None, pattern=DURATION_PATTERN, max_length=64)

    @property
    def seconds(self) -> float | None:
        return None if self.duration is None else parse_duration(self.duration)


class CanaryScale(SpecModel):
    """The canary's replicas while a router sets exact weights: a count, a percent
    of spec.replicas, or (matchTrafficWeight) the step's weight as a percent."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "[has(self.replicas), has(self.weight), has(self.matchTrafficWeight)]"
                ".exists_one(x, x)",
                ONE_CANARY_SCALE,
            ),
            ("!has(self.matchTrafficWeight) || self.matchTrafficWeight", MATCH_WEIGHT_IS_TRUE),
        )
    )

    replicas: int | None = Field(default=None, ge=0, le=1000)
    weight: int | None = Field(default=None, ge=0, le=100)
    match_traffic_weight: bool | None = Field(
        default=None, description="Size the canary by the step's setWeight (the default)."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> CanaryScale:
        given = (self.replicas, self.weight, self.match_traffic_weight)
        if sum(g is not None for g in given) != 1:
            raise ValueError(ONE_CANARY_SCALE)
        if self.match_traffic_weight is False:
            raise ValueError(MATCH_WEIGHT_IS_TRUE)
        return self


class HeaderMatch(SpecModel):
    """Requests the header route sends to the canary: a header's exact value or a
    regular expression over it, or a cookie's value."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "has(self.headerName) ? (has(self.headerValue) != has(self.regex) "
                "&& !has(self.cookieName) && !has(self.cookieValue)) "
                ": (has(self.cookieName) && has(self.cookieValue) "
                "&& !has(self.headerValue) && !has(self.regex))",
                ONE_HEADER_MATCH,
            )
        )
    )

    header_name: str | None = Field(default=None, max_length=256, pattern=HEADER_NAME)
    header_value: str | None = Field(default=None, min_length=1, max_length=4096)
    regex: str | None = Field(default=None, min_length=1, max_length=1024)
    # Matched by a regular expression over the Cookie header: letters, digits, `_`
    # and `-` only, so neither needs escaping in any gateway's regex dialect.
    cookie_name: str | None = Field(default=None, max_length=256, pattern=r"^[A-Za-z0-9_-]+$")
    cookie_value: str | None = Field(
        default=None, min_length=1, max_length=1024, pattern=r"^[A-Za-z0-9_-]+$"
    )

    @model_validator(mode="after")
    def _one_kind(self) -> HeaderMatch:
        if self.header_name is not None:
            ok = (self.header_value is None) != (self.regex is None) and (
                self.cookie_name is None and self.cookie_value is None
            )
        else:
            ok = (
                self.cookie_name is not None
                and self.cookie_value is not None
                and self.header_value is None
                and self.regex is None
            )
        if not ok:
            raise ValueError(ONE_HEADER_MATCH)
        return self


class HeaderRoute(SpecModel):
    """A named rule that sends matching requests to the canary from this step to
    the end of the rollout; without `match` it removes the route of that name."""

    name: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL)
    match: tuple[HeaderMatch, ...] = Field(
        default=(),
        max_length=16,
        description="All must match (AND); empty removes the header route of this name.",
    )


class ShadowStep(SpecModel):
    """The challenger receives a copy of `percent`% of live requests for `duration`;
    its answers reach no client. The stable revision's model servers send the
    copies and compare the answers (modelserver_shadow_* metrics); analysis
    metrics with `shadow: true` decide the step."""

    percent: int = Field(ge=1, le=100, description="Percent of live requests copied.")
    duration: str = Field(pattern=DURATION_PATTERN, max_length=64)

    @property
    def seconds(self) -> float:
        return parse_duration(self.duration)


class CanaryStep(SpecModel):
    """One step: exactly one of setWeight, pause, setCanaryScale, setHeaderRoute or shadow."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "[has(self.setWeight), has(self.pause), has(self.setCanaryScale), "
                "has(self.setHeaderRoute), has(self.shadow)].exists_one(x, x)",
                ONE_STEP_KIND,
            )
        )
    )

    set_weight: int | None = Field(
        default=None, ge=0, le=100, description="Percent of traffic on the new revision."
    )
    pause: PauseStep | None = Field(
        default=None, description="Hold the step; without duration, until `promote`."
    )
    set_canary_scale: CanaryScale | None = Field(
        default=None,
        description="The canary's replicas from here on (trafficRouting only: weights are exact).",
    )
    set_header_route: HeaderRoute | None = Field(
        default=None,
        description="Send requests matching headers or a cookie to the canary (trafficRouting).",
    )
    shadow: ShadowStep | None = Field(
        default=None,
        description="Copy a share of live requests to the canary; no client sees its answers.",
    )

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> CanaryStep:
        kinds = (
            self.set_weight,
            self.pause,
            self.set_canary_scale,
            self.set_header_route,
            self.shadow,
        )
        if sum(kind is not None for kind in kinds) != 1:
            raise ValueError(ONE_STEP_KIND)
        return self


class GatewayAPIRouting(SpecModel):
    """The HTTPRoute(s) whose rules send traffic to the `<name>` Service: the
    operator sets the weights of `<name>` and `<name>-canary` in them."""

    model_config = ConfigDict(
        json_schema_extra=cel(("has(self.httpRoute) != has(self.httpRoutes)", ONE_ROUTE_FIELD))
    )

    http_route: str | None = Field(
        default=None, min_length=1, max_length=MAX_NAME_LENGTH, pattern=DNS_SUBDOMAIN
    )
    http_routes: (
        tuple[
            Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=DNS_SUBDOMAIN)],
            ...,
        ]
        | None
    ) = Field(default=None, min_length=1, max_length=MAX_ROUTES)
    namespace: str | None = Field(
        default=None,
        max_length=63,
        pattern=DNS_LABEL,
        description="The routes' namespace; omitted, the ModelDeployment's.",
    )
    on_no_status: Literal["Wait", "Proceed"] = Field(
        default="Wait",
        json_schema_extra={"maxLength": MAX_ENUM_LENGTH},
        description=(
            "When no gateway controller reports the route's status for the generation "
            "the operator wrote: Wait (the step waits, saying so) or Proceed."
        ),
    )

    @model_validator(mode="after")
    def _one_route_field(self) -> GatewayAPIRouting:
        if (self.http_route is None) == (self.http_routes is None):
            raise ValueError(ONE_ROUTE_FIELD)
        return self

    @property
    def route_names(self) -> tuple[str, ...]:
        return (self.http_route,) if self.http_route is not None else tuple(self.http_routes or ())


class TrafficRouting(SpecModel):
    gateway_api: GatewayAPIRouting = Field(alias="gatewayAPI")


class CanaryStrategy(SpecModel):
    steps: tuple[CanaryStep, ...] = Field(
        min_length=1,
        max_length=MAX_STEPS,
        json_schema_extra=cel(
            (
                "self.filter(s, has(s.setWeight)).map(s, s.setWeight).isSorted()",
                WEIGHTS_NEVER_DECREASE,
            )
        ),
    )
    traffic_routing: TrafficRouting | None = Field(
        default=None,
        description="Exact weights through a Gateway API HTTPRoute instead of replica counts.",
    )

    @field_validator("steps")
    @classmethod
    def _weights_never_decrease(cls, steps: tuple[CanaryStep, ...]) -> tuple[CanaryStep, ...]:
        weights = [step.set_weight for step in steps if step.set_weight is not None]
        if weights != sorted(weights):
            raise ValueError(f"{WEIGHTS_NEVER_DECREASE}: {weights}")
        return steps


class BlueGreenStrategy(SpecModel):
    preview_replicas: int = Field(default=1, ge=1, le=1000)
    # None: the preview waits for `promote`.
    auto_promotion_seconds: int | None = Field(
        default=None,
        ge=0,
        le=86400,
        description="Promote this long after the preview is ready; omitted, wait for `promote`.",
    )
    scale_down_delay_seconds: int = Field(
        default=30,
        ge=0,
        le=86400,
        description=(
            "The old revision stays up this long after the switch; with analysis, the switch "
            "is verified meanwhile and a failure switches back."
        ),
    )
    traffic_routing: TrafficRouting | None = Field(
        default=None,
        description=(
            "Switch through a Gateway API HTTPRoute (all traffic to `<name>-canary` at once), "
            "then through the Service selector."
        ),
    )
    shadow: ShadowStep | None = Field(
        default=None,
        description=(
            "Before the preview can be promoted, the new revision answers a copy of `percent`% "
            "of the live requests for `duration`, seen by no client; the metrics with "
            "`shadow: true` decide it."
        ),
    )


class Strategy(SpecModel):
    model_config = ConfigDict(
        json_schema_extra=cel(("has(self.canary) != has(self.blueGreen)", ONE_STRATEGY))
    )

    canary: CanaryStrategy | None = None
    blue_green: BlueGreenStrategy | None = None

    @property
    def traffic_routing(self) -> TrafficRouting | None:
        """The router that sets exact weights; None: replica counts and Service selectors."""
        chosen = self.canary or self.blue_green
        return chosen.traffic_routing if chosen is not None else None

    @model_validator(mode="after")
    def _exactly_one_strategy(self) -> Strategy:
        if (self.canary is None) == (self.blue_green is None):
            raise ValueError(ONE_STRATEGY)
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

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "has(self.min) || has(self.max) || (has(self.compareTo) "
                "&& (has(self.maxIncrease) || has(self.maxDecrease)))",
                METRIC_NEEDS_A_BOUND,
            ),
            (
                "(!has(self.maxIncrease) && !has(self.maxDecrease)) || has(self.compareTo)",
                RELATIVE_NEEDS_STABLE,
            ),
            # The validator names both values; CEL messages are fixed text.
            (
                "!has(self.min) || !has(self.max) || self.min <= self.max",
                "min must not be greater than max",
            ),
        )
    )

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    provider: Literal["prometheus"] = Field(
        default="prometheus", json_schema_extra={"maxLength": MAX_ENUM_LENGTH}
    )
    query: str = Field(
        min_length=1,
        max_length=MAX_QUERY_LENGTH,
        description=(
            "PromQL; may use {{ namespace }}, {{ name }}, {{ revision }}, {{ canaryRevision }}, "
            "{{ stableRevision }}, {{ version }}, {{ canaryVersion }}, {{ stableVersion }}, "
            "{{ interval }}."
        ),
    )
    min_value: float | None = Field(default=None, alias="min")
    max_value: float | None = Field(default=None, alias="max")
    compare_to: Literal["stable"] | None = Field(
        default=None, json_schema_extra={"maxLength": MAX_ENUM_LENGTH}
    )
    max_increase: float | None = Field(default=None, ge=0)
    max_decrease: float | None = Field(default=None, ge=0)
    # Measured and reported, never decides the rollout.
    dry_run: bool = Field(default=False, description="Measure and report, never decide.")
    shadow: bool = Field(
        default=False,
        description=(
            "Judge this metric during shadow steps only (the comparison of the copies); "
            "the others are judged on the traffic the new revision answers, not then."
        ),
    )

    @model_validator(mode="after")
    def _has_a_bound(self) -> Metric:
        relative = self.max_increase is not None or self.max_decrease is not None
        if relative and self.compare_to is None:
            raise ValueError(RELATIVE_NEEDS_STABLE)
        if self.min_value is None and self.max_value is None and not relative:
            raise ValueError(METRIC_NEEDS_A_BOUND)
        if (
            self.min_value is not None
            and self.max_value is not None
            and self.min_value > self.max_value
        ):
            raise ValueError(f"min {self.min_value} is greater than max {self.max_value}")
        return self


class Analysis(SpecModel):
    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "!has(self.metrics) || !self.metrics.exists(m, m.provider == 'prometheus') "
                "|| has(self.prometheus)",
                PROMETHEUS_NEEDS_ADDRESS,
            )
        )
    )

    interval: str = Field(default="30s", pattern=DURATION_PATTERN, max_length=64)
    # 1 tolerates one noisy measurement while still rolling back within two intervals.
    failure_limit: int = Field(
        default=1,
        ge=0,
        le=100,
        description="A metric fails the rollout when its failures exceed this.",
    )
    # 4 rides out a Prometheus restart at the default interval.
    consecutive_error_limit: int = Field(
        default=4,
        ge=0,
        le=100,
        description="Query errors in a row (Prometheus down, bad PromQL) tolerated.",
    )
    on_no_data: Literal["Pause", "Fail", "Ignore"] = Field(
        default="Pause",
        description="What a measurement without data means; never a promotion.",
    )
    prometheus: PrometheusProvider | None = None
    webhook: WebhookCheck | None = Field(
        default=None,
        description=(
            "An HTTP endpoint POSTed once per interval; 2xx passes, another status fails, "
            "no answer is an error."
        ),
    )
    # Names are unique: the API server refuses a repeated one (a list keyed by name).
    metrics: tuple[Metric, ...] = Field(
        default=(), max_length=MAX_METRICS, json_schema_extra=list_map("name")
    )

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
            raise ValueError(PROMETHEUS_NEEDS_ADDRESS)
        if self.interval_seconds <= 0:
            raise ValueError("interval must be longer than 0s")
        return self


class WebhookNotification(SpecModel):
    """A JSON POST on rollback and on drift; the URL is a secret (Slack's URLs are)."""

    url_secret_ref: SecretKeyRef = Field(
        description="The Secret (in this namespace) and key holding the webhook URL."
    )
    # slack's {"text": ...} is what Slack, Mattermost and Microsoft Teams incoming
    # webhooks accept.
    format: Literal["json", "slack"] = Field(
        default="json",
        description=(
            'json: the event as an object; slack: {"text": ...} (Slack, Mattermost, Teams).'
        ),
    )
    timeout_seconds: int = Field(default=10, ge=1, le=300)


class Notifications(SpecModel):
    webhook: WebhookNotification | None = Field(
        default=None,
        description=(
            "A POST on rollback, drift and drift recovery; failures become Warning Events."
        ),
    )


class Rollback(SpecModel):
    # Off: a failing analysis halts the rollout (Degraded) and waits for abort or promote.
    automatic: bool = True


RETRAINING_NEEDS_ALIAS: Final = (
    "retraining needs model.registry with an alias: the candidate a retraining "
    "registers enters through the alias this ModelDeployment tracks"
)
RETRAINING_METRICS: Final = ("accuracy", "f1", "mae", "rmse")


def _check_pod_template(template: dict[str, Any], where: str) -> dict[str, Any]:
    pod_spec = template.get("spec")
    containers = pod_spec.get("containers") if isinstance(pod_spec, dict) else None
    if not isinstance(containers, list) or not containers:
        raise ValueError(f"{where}.spec.containers must list at least one container")
    for index, container in enumerate(containers):
        if not isinstance(container, dict) or not container.get("name"):
            raise ValueError(f"{where}.spec.containers[{index}] needs a name")
        if not container.get("image"):
            raise ValueError(f"{where}.spec.containers[{index}] needs an image")
    return template


class RetrainingTriggers(SpecModel):
    """What starts a retraining Job (README: "Retraining"). A manual
    `kubectl modelrollout retrain NAME` always can, whatever is set here."""

    on_drift: bool = Field(
        default=True,
        description=(
            "Start one when the stable revision's drift watch fires (status.drift): "
            "input drift, or live accuracy or error past an analysis metric's bound."
        ),
    )
    drift_metrics: tuple[Annotated[str, Field(min_length=1, max_length=63)], ...] = Field(
        default=(),
        max_length=MAX_METRICS,
        description="Only drift of these analysis metrics starts one; empty: any of them.",
    )
    schedule: str | None = Field(
        default=None,
        min_length=9,
        max_length=128,
        description='A cron schedule in UTC (five fields), e.g. "0 3 * * 0" for Sundays at 3:00.',
    )

    @field_validator("schedule")
    @classmethod
    def _schedule_parses(cls, schedule: str | None) -> str | None:
        from croniter import croniter

        if schedule is not None and (len(schedule.split()) != 5 or not croniter.is_valid(schedule)):
            raise ValueError(
                f"retraining.triggers.schedule {schedule!r} is not a five-field cron expression"
            )
        return schedule


class RetrainingJob(SpecModel):
    """The Job the operator starts: the user's training container, which gets the
    champion, the registry and the decision rule as MODELROLLOUT_RETRAIN_* env."""

    template: Annotated[dict[str, Any], WithJsonSchema(POD_TEMPLATE_SCHEMA)] = Field(
        description=(
            "A PodTemplateSpec, as in a Job: the training container, which gets "
            "MODELROLLOUT_RETRAIN_* env and writes its outcome to its termination message."
        )
    )
    backoff_limit: int = Field(
        default=0,
        ge=0,
        le=10,
        description="Retries of a failed pod; 0: a failure is reported, not repeated.",
    )
    active_deadline_seconds: int = Field(
        default=3600,
        ge=60,
        le=7 * 86400,
        description="The longest a run may take before it counts as failed.",
    )

    @field_validator("template")
    @classmethod
    def _template_has_containers(cls, template: dict[str, Any]) -> dict[str, Any]:
        return _check_pod_template(template, "retraining.job.template")


class Retraining(SpecModel):
    """Retrain the model when it rots, compare the candidate with the champion on the
    same fresh labelled data, and register it behind the tracked alias only if it is
    not worse: then it rolls out (and is compared live) like any other version."""

    job: RetrainingJob
    triggers: RetrainingTriggers = RetrainingTriggers()
    cool_down: str = Field(
        default="1h",
        pattern=DURATION_PATTERN,
        max_length=64,
        description=(
            "After a run ends, how long drift cannot start another one, so a flapping "
            "metric does not start a Job every interval."
        ),
    )
    margin: float = Field(
        default=0.0,
        ge=0,
        description=(
            "How much worse than the champion the candidate may be and still be registered."
        ),
    )
    metric: Literal["accuracy", "f1", "mae", "rmse"] | None = Field(
        default=None,
        description="The metric that decides; default accuracy (classifiers), mae (regressors).",
    )
    min_rows: int = Field(
        default=50, ge=1, le=10_000_000, description="Fewer fresh labelled rows fail the run."
    )
    include_original_data: bool = Field(
        default=True,
        description="Train on the champion's training set too, not only on fresh labelled data.",
    )
    history_limit: int = Field(
        default=3, ge=1, le=20, description="Finished Jobs kept (with their pods' logs)."
    )

    @field_validator("cool_down")
    @classmethod
    def _cool_down_parses(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def cool_down_seconds(self) -> float:
        return parse_duration(self.cool_down)


class ModelDeploymentSpec(SpecModel):
    replicas: int = Field(
        default=1,
        ge=0,
        le=10000,
        description="Model-server pods serving all traffic once a rollout completes.",
        # As a Deployment's replicas: a scale subresource can point at it.
        json_schema_extra={"format": "int32"},
    )
    model: ModelRef = Field(
        description="The model the servers load. Changing it (or template) starts a rollout."
    )
    # Kept as the user wrote it; the executor builds from it.
    template: Annotated[dict[str, Any], WithJsonSchema(POD_TEMPLATE_SCHEMA)] = Field(
        description=(
            "A PodTemplateSpec, as in a Deployment. The operator adds its labels and MODEL_* env."
        )
    )
    service: ServicePorts = ServicePorts()
    autoscaling: Autoscaling | None = Field(
        default=None,
        description=(
            "An HPA the operator owns for this ModelDeployment: it sets spec.replicas "
            "(leave replicas out of a GitOps manifest), the operator splits it."
        ),
    )
    strategy: Strategy = Field(description="Exactly one of canary or blueGreen.")
    analysis: Analysis | None = None
    rollback: Rollback = Rollback()
    notifications: Notifications = Field(
        default=Notifications(),
        description=(
            "Where to tell people about automatic rollbacks and drift of the stable revision."
        ),
    )
    revision_history_limit: int = Field(
        default=10,
        ge=0,
        le=MAX_HISTORY_LIMIT,
        description="Old revisions kept (scaled to 0) for undo, beyond the one serving.",
    )
    retraining: Retraining | None = Field(
        default=None,
        description=(
            "Retrain when the model rots (drift, live accuracy, a schedule, or `retrain`), "
            "and register the candidate behind model.registry.alias only if it is not worse."
        ),
    )
    # 600 s as Argo Rollouts, Flagger and Deployments have it: long enough for a
    # large image pull and a model load, short enough that a crash loop does not
    # sit unnoticed for an afternoon.
    progress_deadline_seconds: int = Field(
        default=600,
        ge=1,
        le=MAX_PROGRESS_DEADLINE_SECONDS,
        description=(
            "How long the revision being rolled out (or the first one) may lack available "
            "pods for its step before the rollout stops, Degraded with reason "
            "ProgressDeadlineExceeded naming what its pods report; rolled back when "
            "rollback.automatic. Time paused by `pause` does not count."
        ),
    )

    @field_validator("template")
    @classmethod
    def _template_has_containers(cls, template: dict[str, Any]) -> dict[str, Any]:
        return _check_pod_template(template, "template")

    # Not a CEL rule: one on the spec's root would make the API server's cost
    # estimate walk the templates' unbounded container lists. The operator reports
    # it (Degraded, InvalidSpec) and `modelrollout validate` before that.
    @model_validator(mode="after")
    def _retraining_has_an_alias(self) -> ModelDeploymentSpec:
        registry = self.model.registry
        if self.retraining is not None and (registry is None or registry.alias is None):
            raise ValueError(RETRAINING_NEEDS_ALIAS)
        return self
