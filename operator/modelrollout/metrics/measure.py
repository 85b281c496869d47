"""Runs a measurement request of the decision core and returns the verdicts.

Every requested check gets a verdict, whatever goes wrong: a provider that could
not be built (a missing Secret) is an error verdict per metric with the reason,
so status.analysis and consecutiveErrorLimit see it like any query error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelrollout.metrics.measurement import Measurement
from modelrollout.metrics.templating import TemplateError, render
from modelrollout.metrics.verdicts import verdict
from modelrollout.metrics.webhook import check_webhook
from modelrollout.rollout import WEBHOOK_CHECK, MetricVerdict

if TYPE_CHECKING:
    from datetime import datetime

    from modelrollout.api import Analysis, Metric
    from modelrollout.metrics.measurement import MetricProvider
    from modelrollout.rollout import MeasurementRequest


@dataclass(frozen=True)
class ProviderUnavailable:
    """The metric provider could not be built; `reason` says why (no secret values)."""

    reason: str


def measure(
    analysis: Analysis,
    request: MeasurementRequest,
    provider: MetricProvider | ProviderUnavailable | None,
    now: datetime,
) -> dict[str, MetricVerdict]:
    """`provider` may be None only when the request has no metric to query."""
    metrics = {metric.name: metric for metric in analysis.metrics}
    verdicts: dict[str, MetricVerdict] = {}
    for name in request.metrics:
        assert provider is not None, "metrics requested without a provider"
        verdicts[name] = _metric(metrics[name], request, provider, now)
    if request.webhook and analysis.webhook is not None:
        verdicts[WEBHOOK_CHECK] = check_webhook(
            analysis.webhook, request.variables, measured_at=now, revision=request.revision
        )
    return verdicts


def _metric(
    metric: Metric,
    request: MeasurementRequest,
    provider: MetricProvider | ProviderUnavailable,
    now: datetime,
) -> MetricVerdict:
    if isinstance(provider, ProviderUnavailable):
        return MetricVerdict("error", now, message=provider.reason, revision=request.revision)
    try:
        measured = provider.measure(render(metric.query, request.variables))
        stable = (
            provider.measure(render(metric.query, request.stable_variables))
            if metric.compare_to == "stable"
            else None
        )
    except TemplateError as error:
        measured, stable = Measurement.error(str(error)), None
    return verdict(metric, measured, stable, measured_at=now, revision=request.revision)
