"""Measures the checks that are due and returns the verdicts for the core.

Every check gets a verdict, whatever goes wrong: a provider that could not be
built (a missing Secret) is an error verdict per metric with the reason, so
status.analysis and consecutiveErrorLimit see it like any query error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelrollout.metrics.measurement import Measurement
from modelrollout.metrics.templating import TemplateError, render, variables
from modelrollout.metrics.verdicts import verdict
from modelrollout.metrics.webhook import check_webhook
from modelrollout.rollout import WEBHOOK_CHECK, MetricVerdict

if TYPE_CHECKING:
    from datetime import datetime

    from modelrollout.api import Analysis, Metric
    from modelrollout.metrics.measurement import MetricProvider
    from modelrollout.metrics.schedule import Due
    from modelrollout.metrics.templating import QueryContext, Side


def measure(
    analysis: Analysis,
    due: Due,
    context: QueryContext,
    provider: MetricProvider | str,
    now: datetime,
) -> dict[str, MetricVerdict]:
    """`provider` is a message instead when it could not be built."""
    metrics = {metric.name: metric for metric in analysis.metrics}
    verdicts: dict[str, MetricVerdict] = {}
    for name in due.checks:
        if name in metrics:
            verdicts[name] = _metric(metrics[name], due, context, provider, now)
        elif name == WEBHOOK_CHECK and analysis.webhook is not None:
            verdicts[name] = check_webhook(
                analysis.webhook,
                variables(context, "canary"),
                measured_at=now,
                revision=due.revision,
            )
    return verdicts


def _metric(
    metric: Metric,
    due: Due,
    context: QueryContext,
    provider: MetricProvider | str,
    now: datetime,
) -> MetricVerdict:
    if isinstance(provider, str):
        return MetricVerdict("error", now, message=provider, revision=due.revision)
    side: Side = "canary" if due.rollout else "stable"
    try:
        measured = provider.measure(render(metric.query, variables(context, side)))
        stable = (
            provider.measure(render(metric.query, variables(context, "stable")))
            if metric.compare_to == "stable"
            else None
        )
    except TemplateError as error:
        measured, stable = Measurement.error(str(error)), None
    return verdict(metric, measured, stable, measured_at=now, revision=due.revision)
