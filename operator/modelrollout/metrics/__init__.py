"""Measuring the analysis: metric providers behind one Protocol, query rendering
and verdicts from thresholds.

What is measured, of which revision and when, is the decision core's call
(modelrollout.rollout.measurement.request); this package runs its request and
the core judges the verdicts. Providers block (HTTP), so they run in the
operator's worker threads, each query bounded by a timeout. Credentials come in
as values: reading Secrets is the kube layer's job, and this package never logs them.
"""

from modelrollout.metrics.measure import ProviderUnavailable, measure
from modelrollout.metrics.measurement import Measurement, MetricProvider
from modelrollout.metrics.prometheus import PrometheusMetricProvider
from modelrollout.metrics.templating import render

__all__ = [
    "Measurement",
    "MetricProvider",
    "PrometheusMetricProvider",
    "ProviderUnavailable",
    "measure",
    "render",
]
