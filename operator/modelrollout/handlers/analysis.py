"""Glue for one reconcile's measurements: which checks are due, credentials from
Secrets, the provider, the verdicts. Runs in a worker thread (it blocks)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from modelrollout.kube.secrets import SecretUnavailableError, secret_text, secret_value
from modelrollout.metrics import PrometheusMetricProvider, QueryContext, due, measure
from modelrollout.metrics.prometheus import ca_bundle_file
from modelrollout.rollout import bluegreen

if TYPE_CHECKING:
    from datetime import datetime

    from kubernetes import client

    from modelrollout.api import Analysis, ModelDeploymentSpec, ModelDeploymentStatus
    from modelrollout.api.ownership import Owner
    from modelrollout.metrics import MetricProvider
    from modelrollout.rollout import MetricVerdict

logger = logging.getLogger(__name__)


def measure_analysis(
    api: client.ApiClient,
    owner: Owner,
    spec: ModelDeploymentSpec,
    status: ModelDeploymentStatus,
    now: datetime,
) -> dict[str, MetricVerdict]:
    """Verdicts of the checks due now ({} when none is); never raises for a
    failed measurement, only for a failed Kubernetes call."""
    analysis = spec.analysis
    plan = due(analysis, status, now, comparisons=not bluegreen.switched(spec, status))
    if analysis is None or plan is None:
        return {}
    stable_revision, stable_version = status.stable_revision or "", status.stable_version or ""
    context = QueryContext(
        namespace=owner.namespace,
        name=owner.name,
        # While no rollout runs, the stable revision stands in for the canary (templating.py).
        canary_revision=status.canary_revision or stable_revision,
        canary_version=status.canary_version or stable_version,
        stable_revision=stable_revision,
        stable_version=stable_version,
        interval_seconds=analysis.interval_seconds,
    )
    provider = _provider(api, owner.namespace, analysis) if analysis.metrics else "no metrics"
    try:
        verdicts = measure(analysis, plan, context, provider, now)
    finally:
        if not isinstance(provider, str):
            provider.close()
    for name, verdict in verdicts.items():
        logger.debug(
            "%s/%s %s of %s: %s %s %s",
            owner.namespace, owner.name, name, plan.revision,
            verdict.verdict, verdict.value, verdict.message,
        )  # fmt: skip
    return verdicts


def _provider(api: client.ApiClient, namespace: str, analysis: Analysis) -> MetricProvider | str:
    settings = analysis.prometheus
    if settings is None:  # the spec validation rejects this; say so rather than assert
        return "analysis.prometheus is not set"
    try:
        token = (
            secret_text(api, namespace, settings.bearer_token_secret_ref)
            if settings.bearer_token_secret_ref
            else None
        )
        ca_file = (
            ca_bundle_file(
                secret_value(api, namespace, settings.ca_secret_ref),
                Path(tempfile.gettempdir()),
            )
            if settings.ca_secret_ref
            else None
        )
    except SecretUnavailableError as error:
        return f"Prometheus credentials: {error}"
    return PrometheusMetricProvider(settings.address, bearer_token=token, ca_file=ca_file)
