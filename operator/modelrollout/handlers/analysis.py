"""Runs one reconcile's measurement request: credentials from Secrets, the
provider, the queries. What to measure is the decision core's call
(modelrollout.rollout.measurement). Runs in a worker thread (it blocks)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from modelrollout.kube.secrets import SecretUnavailableError, secret_text, secret_value
from modelrollout.metrics import PrometheusMetricProvider, ProviderUnavailable, measure
from modelrollout.metrics.prometheus import ca_bundle_file
from modelrollout.rollout import request as measurement_request

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
    request = measurement_request(spec, status, now, namespace=owner.namespace, name=owner.name)
    if request is None or spec.analysis is None:
        return {}
    provider = _provider(api, owner.namespace, spec.analysis) if request.metrics else None
    try:
        verdicts = measure(spec.analysis, request, provider, now)
    finally:
        if provider is not None and not isinstance(provider, ProviderUnavailable):
            provider.close()
    for name, verdict in verdicts.items():
        logger.debug(
            "%s/%s %s of %s: %s %s %s",
            owner.namespace, owner.name, name, request.revision,
            verdict.verdict, verdict.value, verdict.message,
        )  # fmt: skip
    return verdicts


def _provider(
    api: client.ApiClient, namespace: str, analysis: Analysis
) -> MetricProvider | ProviderUnavailable:
    settings = analysis.prometheus
    if settings is None:  # the spec validation rejects this; say so rather than assert
        return ProviderUnavailable("analysis.prometheus is not set")
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
        return ProviderUnavailable(f"Prometheus credentials: {error}")
    return PrometheusMetricProvider(settings.address, bearer_token=token, ca_file=ca_file)
