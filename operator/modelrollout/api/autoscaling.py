"""spec.autoscaling: an HPA the operator owns for the ModelDeployment.

A GitOps repository then needs no separate HorizontalPodAutoscaler, and the
HPA's target is always this ModelDeployment's scale subresource (rollout/scale.py
says which pods it counts). The metrics are autoscaling/v2's MetricSpec, typed
here rather than passed through, so that a mistake is refused by `kubectl apply`
with a message instead of surfacing later as an HPA the API server will not
create. `behavior` is not offered yet: an HPA of one's own, pointed at the
ModelDeployment, can have it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from modelrollout.api.base import SpecModel
from modelrollout.api.kubeschema import cel

# Kubernetes' resource.Quantity as a string ("500m", "10", "1.5Gi").
QUANTITY_PATTERN = r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$"
MAX_REPLICAS = 10000
TARGET_FIELD = {
    "Utilization": "averageUtilization",
    "Value": "value",
    "AverageValue": "averageValue",
}
ONE_TARGET = (
    "set exactly the field the target's type names: Utilization -> averageUtilization, "
    "Value -> value, AverageValue -> averageValue"
)
MIN_NOT_ABOVE_MAX = "minReplicas must not be above maxReplicas"


class MetricTarget(SpecModel):
    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "[has(self.averageUtilization), has(self.value), has(self.averageValue)]"
                ".exists_one(x, x) && (self.type != 'Utilization' || has(self.averageUtilization))"
                " && (self.type != 'Value' || has(self.value))"
                " && (self.type != 'AverageValue' || has(self.averageValue))",
                ONE_TARGET,
            )
        )
    )

    type: Literal["Utilization", "Value", "AverageValue"]
    average_utilization: int | None = Field(default=None, ge=1, le=1000)
    value: str | None = Field(default=None, pattern=QUANTITY_PATTERN, max_length=64)
    average_value: str | None = Field(default=None, pattern=QUANTITY_PATTERN, max_length=64)

    @model_validator(mode="after")
    def _one_target(self) -> MetricTarget:
        present = [name for name, value in self._targets().items() if value is not None]
        if present != [TARGET_FIELD[self.type]]:
            raise ValueError(ONE_TARGET)
        return self

    def _targets(self) -> dict[str, Any]:
        return {
            "averageUtilization": self.average_utilization,
            "value": self.value,
            "averageValue": self.average_value,
        }


class MetricIdentifier(SpecModel):
    name: str = Field(min_length=1, max_length=253)
    # A LabelSelector, as the metrics API takes it.
    selector: dict[str, Any] | None = Field(
        default=None, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )


class ResourceMetric(SpecModel):
    name: str = Field(min_length=1, max_length=253, description="cpu or memory")
    target: MetricTarget


class ContainerResourceMetric(ResourceMetric):
    container: str = Field(min_length=1, max_length=63)


class PodsMetric(SpecModel):
    metric: MetricIdentifier
    target: MetricTarget


class DescribedObject(SpecModel):
    api_version: str | None = Field(default=None, max_length=253)
    kind: str = Field(min_length=1, max_length=63)
    name: str = Field(min_length=1, max_length=253)


class ObjectMetric(PodsMetric):
    described_object: DescribedObject


class ExternalMetric(PodsMetric):
    pass


SOURCES = {
    "Resource": "resource",
    "ContainerResource": "containerResource",
    "Pods": "pods",
    "Object": "object",
    "External": "external",
}
ONE_SOURCE = (
    "set exactly the field the metric's type names: Resource -> resource, ContainerResource "
    "-> containerResource, Pods -> pods, Object -> object, External -> external"
)


class AutoscalingMetric(SpecModel):
    """One of autoscaling/v2's MetricSpec, as an HPA takes it."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "[has(self.resource), has(self.containerResource), has(self.pods), "
                "has(self.object), has(self.external)].exists_one(x, x)"
                " && (self.type != 'Resource' || has(self.resource))"
                " && (self.type != 'ContainerResource' || has(self.containerResource))"
                " && (self.type != 'Pods' || has(self.pods))"
                " && (self.type != 'Object' || has(self.object))"
                " && (self.type != 'External' || has(self.external))",
                ONE_SOURCE,
            )
        )
    )

    type: Literal["Resource", "ContainerResource", "Pods", "Object", "External"]
    resource: ResourceMetric | None = None
    container_resource: ContainerResourceMetric | None = None
    pods: PodsMetric | None = None
    object: ObjectMetric | None = None
    external: ExternalMetric | None = None

    @model_validator(mode="after")
    def _one_source(self) -> AutoscalingMetric:
        given = {
            "resource": self.resource,
            "containerResource": self.container_resource,
            "pods": self.pods,
            "object": self.object,
            "external": self.external,
        }
        if [key for key, value in given.items() if value is not None] != [SOURCES[self.type]]:
            raise ValueError(ONE_SOURCE)
        return self


class Autoscaling(SpecModel):
    """The operator owns a HorizontalPodAutoscaler `<name>` whose target is this
    ModelDeployment; it writes spec.replicas, the operator splits it."""

    model_config = ConfigDict(
        json_schema_extra=cel(("self.minReplicas <= self.maxReplicas", MIN_NOT_ABOVE_MAX))
    )

    min_replicas: int = Field(default=1, ge=1, le=MAX_REPLICAS)
    max_replicas: int = Field(ge=1, le=MAX_REPLICAS)
    metrics: tuple[AutoscalingMetric, ...] = Field(
        default=(),
        max_length=16,
        description="autoscaling/v2 metrics; none: the HPA's default, 80% CPU utilization.",
    )

    @model_validator(mode="after")
    def _min_not_above_max(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(MIN_NOT_ABOVE_MAX)
        return self

    def hpa_spec(self) -> dict[str, Any]:
        """The HPA's spec, scaleTargetRef aside, as autoscaling/v2 spells it."""
        body: dict[str, Any] = {"minReplicas": self.min_replicas, "maxReplicas": self.max_replicas}
        if self.metrics:
            body["metrics"] = [
                m.model_dump(by_alias=True, exclude_none=True, mode="json") for m in self.metrics
            ]
        return body
