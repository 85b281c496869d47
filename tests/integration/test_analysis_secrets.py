"""Credentials for analysis and notifications come from Secrets in the object's
namespace, read from the real API server; problems name the Secret, never a value."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from modelrollout.api.spec import Analysis, SecretKeyRef
from modelrollout.devenv.prometheus import start_prometheus
from modelrollout.handlers.analysis import _provider
from modelrollout.kube.secrets import SecretUnavailableError, secret_text
from modelrollout.metrics import PrometheusMetricProvider, ProviderUnavailable
from modelrollout.metrics.measurement import Measurement
from support.kube import ClusterUnderTest
from support.tls_proxy import Certificates, make_certificates, token_proxy

pytestmark = pytest.mark.integration

TOKEN = "s3cr3t-t0ken"
QUERY = "vector(42)"


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path / "tls")


@pytest.fixture
def secured_prometheus(tmp_path: Path, certificates: Certificates) -> Iterator[str]:
    """A real Prometheus reachable only over TLS with the bearer token."""
    prometheus = start_prometheus(tmp_path / "prometheus")
    try:
        with token_proxy(prometheus.url, TOKEN, certificates) as url:
            yield url
    finally:
        prometheus.stop()


@pytest.fixture
def secret(kube: ClusterUnderTest, namespace: str, certificates: Certificates) -> str:
    data = {"token": TOKEN.encode() + b"\n", "ca.crt": certificates.ca.read_bytes()}
    client.CoreV1Api(kube.api).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="prom"),
            data={k: base64.b64encode(v).decode() for k, v in data.items()},
        ),
    )
    return "prom"


def analysis_for(address: str, token_key: str | None, ca_key: str | None) -> Analysis:
    prometheus: dict[str, object] = {"address": address}
    if token_key:
        prometheus["bearerTokenSecretRef"] = {"name": "prom", "key": token_key}
    if ca_key:
        prometheus["caSecretRef"] = {"name": "prom", "key": ca_key}
    return Analysis.model_validate(
        {"prometheus": prometheus, "metrics": [{"name": "m", "query": QUERY, "min": 1}]}
    )


def measured(kube: ClusterUnderTest, namespace: str, analysis: Analysis) -> Measurement:
    provider = _provider(kube.api, namespace, analysis)
    assert isinstance(provider, PrometheusMetricProvider), provider
    try:
        return provider.measure(QUERY)
    finally:
        provider.close()


def test_token_and_ca_from_secrets_reach_a_prometheus_that_demands_them(
    kube: ClusterUnderTest, namespace: str, secret: str, secured_prometheus: str
) -> None:
    answer = measured(kube, namespace, analysis_for(secured_prometheus, "token", "ca.crt"))
    assert (answer.kind, answer.value) == ("value", 42.0), answer


def test_without_the_token_the_query_is_an_error_not_no_data(
    kube: ClusterUnderTest, namespace: str, secret: str, secured_prometheus: str
) -> None:
    answer = measured(kube, namespace, analysis_for(secured_prometheus, None, "ca.crt"))
    assert answer.kind == "error" and "401" in answer.message, answer
    assert TOKEN not in answer.message


def test_without_the_ca_bundle_the_server_is_not_trusted(
    kube: ClusterUnderTest, namespace: str, secret: str, secured_prometheus: str
) -> None:
    answer = measured(kube, namespace, analysis_for(secured_prometheus, "token", None))
    assert answer.kind == "error" and "certificate" in answer.message.lower(), answer
    assert TOKEN not in answer.message


@pytest.mark.parametrize(
    ("name", "key", "problem"),
    [("absent", "token", "not found"), ("prom", "nope", "has no key 'nope'")],
)
def test_missing_secrets_are_named_and_become_error_verdicts(
    kube: ClusterUnderTest, namespace: str, secret: str, name: str, key: str, problem: str
) -> None:
    ref = SecretKeyRef(name=name, key=key)
    with pytest.raises(SecretUnavailableError, match=problem):
        secret_text(kube.api, namespace, ref)
    analysis = Analysis.model_validate(
        {
            "prometheus": {
                "address": "http://p:9090",
                "bearerTokenSecretRef": {"name": name, "key": key},
            },
            "metrics": [{"name": "m", "query": "up", "min": 1}],
        }
    )
    unavailable = _provider(kube.api, namespace, analysis)
    assert isinstance(unavailable, ProviderUnavailable), unavailable
    assert problem in unavailable.reason and TOKEN not in unavailable.reason
