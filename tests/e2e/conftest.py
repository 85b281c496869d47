"""Fixtures of the end-to-end tier: trained model artifacts (once per session),
and per test the real operator and the serving stack: the artifact store the
model-server pods download from, Prometheus discovering and scraping those pods,
and traffic to the Services' ClusterIPs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from modelrollout.devenv.stack import Artifact, ServingStack, serving_stack, train_variants
from support.kube import ClusterUnderTest
from support.operator import OperatorProcess
from support.rollouts import Rollouts


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Artifact]:
    """wine: baseline, improved, degraded and shifted, by `modelrollout train`."""
    return train_variants(tmp_path_factory.mktemp("models"))


@pytest.fixture
def stack(
    request: pytest.FixtureRequest,
    operator: OperatorProcess,
    kube: ClusterUnderTest,
    namespace: str,
    tmp_path: Path,
) -> Iterator[ServingStack]:
    failed_before = request.session.testsfailed
    with serving_stack(kube.cluster, [namespace], tmp_path / "stack") as running:
        yield running
        # Reports are logged phase by phase: a failed call is counted by teardown.
        if request.session.testsfailed > failed_before:
            print(running.server_logs())


@pytest.fixture
def rollouts(operator: OperatorProcess, namespace: str) -> Rollouts:
    return Rollouts(operator.cluster, namespace)
