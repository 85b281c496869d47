"""Measuring the analysis: metric providers behind one Protocol, query templating,
verdicts from thresholds, and when each check is due.

The decision core (modelrollout.rollout) judges verdicts; this package produces
them. Providers block (HTTP), so they run in the operator's worker threads,
each query bounded by a timeout. Credentials come in as values: reading Secrets
is the kube layer's job, and this package never logs them.
"""

from modelrollout.metrics.measure import measure
from modelrollout.metrics.measurement import Measurement, MetricProvider
from modelrollout.metrics.prometheus import PrometheusMetricProvider
from modelrollout.metrics.schedule import Due, due
from modelrollout.metrics.templating import QueryContext, render, variables

__all__ = [
    "Due",
    "Measurement",
    "MetricProvider",
    "PrometheusMetricProvider",
    "QueryContext",
    "due",
    "measure",
    "render",
    "variables",
]
