"""What only the operator can judge about a schema-valid spec.

Each problem names the field and what to fix; any problem makes the object
Degraded with reason InvalidSpec, and nothing in the cluster is touched until
the spec is fixed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelrollout.api.names import INJECTED_ENV, RESERVED_LABELS
from modelrollout.api.spec import QUERY_VARIABLE, QUERY_VARIABLES
from modelrollout.rollout.analysis import WEBHOOK_CHECK

if TYPE_CHECKING:
    from modelrollout.api import ModelDeploymentSpec


def spec_problems(spec: ModelDeploymentSpec) -> list[str]:
    problems: list[str] = []
    canary = spec.strategy.canary
    if canary is not None and canary.traffic_routing is None:
        for index, step in enumerate(canary.steps):
            kind = "setCanaryScale" if step.set_canary_scale else "setHeaderRoute"
            if step.set_canary_scale is not None or step.set_header_route is not None:
                problems.append(
                    f"spec.strategy.canary.steps[{index}].{kind}: needs "
                    "strategy.canary.trafficRouting (without a router the weight is the "
                    "replica ratio and no request can be routed by header)"
                )
    if canary is not None:
        moved = False
        for index, step in enumerate(canary.steps):
            if step.shadow is not None and moved:
                problems.append(
                    f"spec.strategy.canary.steps[{index}].shadow: a shadow step must come before "
                    "any setWeight above 0 (once the canary answers clients, its answers are "
                    "no longer only compared)"
                )
            moved = moved or bool(step.set_weight)
    problems += _template_problems(spec.template)
    if spec.analysis is not None:
        for index, metric in enumerate(spec.analysis.metrics):
            unknown = sorted(set(QUERY_VARIABLE.findall(metric.query)) - QUERY_VARIABLES)
            if unknown:
                problems.append(
                    f"spec.analysis.metrics[{index}].query: unknown variable(s) "
                    f"{', '.join(unknown)}; use {', '.join(sorted(QUERY_VARIABLES))}"
                )
            if spec.analysis.webhook is not None and metric.name == WEBHOOK_CHECK:
                problems.append(
                    f"spec.analysis.metrics[{index}].name: {WEBHOOK_CHECK!r} is reserved for "
                    "analysis.webhook; rename the metric"
                )
    return problems


def _template_problems(template: dict[str, Any]) -> list[str]:
    problems = []
    metadata = template.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    if isinstance(labels, dict):
        for key in RESERVED_LABELS:
            if key in labels:
                problems.append(
                    f"spec.template.metadata.labels: remove {key}; the operator sets it"
                )
    for index, container in enumerate(template.get("spec", {}).get("containers", [])):
        env = container.get("env") if isinstance(container, dict) else None
        names = {item.get("name") for item in env if isinstance(item, dict)} if env else set()
        for name in INJECTED_ENV:
            if name in names:
                problems.append(
                    f"spec.template.spec.containers[{index}].env: remove {name}; the operator "
                    "sets it from spec.model"
                )
    return problems
