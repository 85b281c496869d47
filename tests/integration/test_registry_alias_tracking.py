"""A ModelDeployment that tracks an MLflow registry alias, against a real MLflow
server and the real operator: a new version behind the alias rolls out without
anyone editing spec, the champion alias follows what was promoted, and a registry
that goes away freezes everything as it is (Degraded, nothing torn down) until it
comes back.

The pods are KWOK's (what the servers do with a `models:/` URI is the e2e tier's
and the model server's own tests'); what is judged here is the operator's work.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from modelrollout.devenv.registry import RegistryServer
from modelrollout.devenv.usermodels import packaged_classifier
from support.kube import ClusterUnderTest
from support.operator import OperatorProcess, running_operator
from support.rollouts import Rollouts, example
from support.waiting import wait_for

pytestmark = pytest.mark.integration

MODEL = "churn-model"
POLL_SECONDS = "2"


@pytest.fixture
def registry(tmp_path: Path, kube: ClusterUnderTest) -> Iterator[RegistryServer]:
    with RegistryServer(tmp_path / "mlflow") as server:
        yield server


@pytest.fixture
def registry_operator(
    crds: ClusterUnderTest, namespace: str, registry: RegistryServer, tmp_path: Path
) -> Iterator[OperatorProcess]:
    env = {"MODELROLLOUT_REGISTRY_POLL_SECONDS": POLL_SECONDS}
    with running_operator(crds, namespace, tmp_path, env=env) as process:
        yield process


def _alias(registry: RegistryServer, alias: str) -> str | None:
    answer = requests.get(
        f"{registry.url}/api/2.0/mlflow/registered-models/alias",
        params={"name": MODEL, "alias": alias},
        timeout=10,
    )
    if answer.status_code != 200:
        return None
    return str(answer.json()["model_version"]["version"])


def deployment_env(rollouts: Rollouts, name: str, revision: str) -> dict[str, str]:
    deployment = rollouts.apps.read_namespaced_deployment(f"{name}-{revision}", rollouts.namespace)
    (container,) = deployment.spec.template.spec.containers
    return {e.name: e.value for e in container.env or []}


def _tracking(registry_url: str) -> dict[str, object]:
    body = example("registry-alias")
    body["metadata"]["name"] = "churn"
    spec = body["spec"]
    spec.pop("analysis")
    spec["replicas"] = 2
    spec["strategy"] = {"canary": {"steps": [{"setWeight": 50}]}}
    spec["model"]["registry"]["uri"] = registry_url
    return body


def test_an_alias_moved_in_the_registry_rolls_out_and_the_champion_follows(
    registry_operator: OperatorProcess,
    registry: RegistryServer,
    namespace: str,
    tmp_path: Path,
) -> None:
    rollouts = Rollouts(registry_operator.cluster, namespace)
    first = packaged_classifier(tmp_path / "v1", c=1.0).register(registry.url, MODEL, "candidate")
    rollouts.create(_tracking(registry.url))
    status = rollouts.wait_phase("churn", "Healthy")
    assert status["stableVersion"] == first.version
    assert status["registry"]["resolved"]["sha256"] == first.sha256
    wait_for(lambda: _alias(registry, "champion") == first.version, timeout=30, what="champion v1")
    env = deployment_env(rollouts, "churn", status["stableRevision"])
    assert env["MODEL_URI"] == f"models:/{MODEL}/{first.version}"
    assert env["MODEL_SHA256"] == first.sha256 and env["MLFLOW_TRACKING_URI"] == registry.url

    # A data scientist registers a better model and points the alias at it; nobody edits spec.
    second = packaged_classifier(tmp_path / "v2", c=0.5).register(registry.url, MODEL, "candidate")
    status = rollouts.wait_status(
        "churn",
        "the alias's new version promoted",
        lambda s: s.get("stableVersion") == second.version and s.get("phase") == "Healthy",
        timeout=120,
    )
    wait_for(lambda: _alias(registry, "champion") == second.version, timeout=30, what="champion v2")
    history = status["history"]
    assert [h["registry"]["version"] for h in history[:2]] == [second.version, first.version]
    assert history[0]["registry"]["datasetSha256"] == second.dataset_sha256
    assert "accuracy" in history[0]["registry"]["metrics"]
    assert rollouts.get("churn")["metadata"]["generation"] == 1, "spec was never edited"


def test_a_registry_that_goes_away_freezes_what_serves_until_it_comes_back(
    registry_operator: OperatorProcess,
    registry: RegistryServer,
    namespace: str,
    tmp_path: Path,
) -> None:
    rollouts = Rollouts(registry_operator.cluster, namespace)
    packaged_classifier(tmp_path / "v1", c=1.0).register(registry.url, MODEL, "candidate")
    rollouts.create(_tracking(registry.url))
    healthy = rollouts.wait_phase("churn", "Healthy")
    serving = rollouts.replicas("churn")

    registry.stop()
    status = rollouts.wait_status(
        "churn",
        "Degraded on the unreachable registry",
        lambda s: s.get("reason") == "RegistryUnavailable",
        timeout=60,
    )
    assert status["phase"] == "Degraded"
    assert registry.url in status["message"] and "left as it is" in status["message"]
    assert rollouts.replicas("churn") == serving  # nothing scaled or deleted
    assert status["stableRevision"] == healthy["stableRevision"]

    registry.start()
    rollouts.wait_phase("churn", "Healthy", timeout=60)
    assert rollouts.replicas("churn") == serving
