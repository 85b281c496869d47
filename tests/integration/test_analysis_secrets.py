"""Credentials for analysis and notifications come from Secrets in the object's
namespace, read from the real API server; problems name the Secret, never a value."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from kubernetes import client

from modelrollout.api.spec import Analysis, SecretKeyRef
from modelrollout.handlers.analysis import _provider
from modelrollout.kube.secrets import SecretUnavailableError, secret_text
from modelrollout.metrics import PrometheusMetricProvider
from support.kube import ClusterUnderTest

pytestmark = pytest.mark.integration

TOKEN = "s3cr3t-t0ken"
CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.fixture
def secret(kube: ClusterUnderTest, namespace: str) -> str:
    data = {"token": TOKEN.encode() + b"\n", "ca.crt": CA}
    client.CoreV1Api(kube.api).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="prom"),
            data={k: base64.b64encode(v).decode() for k, v in data.items()},
        ),
    )
    return "prom"


def test_token_and_ca_reach_the_provider(
    kube: ClusterUnderTest, namespace: str, secret: str
) -> None:
    analysis = Analysis.model_validate(
        {
            "prometheus": {
                "address": "https://prometheus.example:9090",
                "bearerTokenSecretRef": {"name": secret, "key": "token"},
                "caSecretRef": {"name": secret, "key": "ca.crt"},
            },
            "metrics": [{"name": "m", "query": "up", "min": 1}],
        }
    )
    provider = _provider(kube.api, namespace, analysis)
    assert isinstance(provider, PrometheusMetricProvider)
    try:
        connection = provider._client
        assert connection.headers == {"Authorization": f"Bearer {TOKEN}"}
        assert Path(connection._session.verify).read_bytes() == CA
    finally:
        provider.close()


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
    message = _provider(kube.api, namespace, analysis)
    assert isinstance(message, str) and problem in message and TOKEN not in message
