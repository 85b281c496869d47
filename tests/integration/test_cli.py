"""The kubectl plugin's errors a user meets first: a missing object, a command
that does not apply now, and an account without the RBAC it needs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes import client

from support.kube import ClusterUnderTest
from support.operator import OperatorProcess
from support.rollouts import Rollouts, example

pytestmark = pytest.mark.integration


def test_a_missing_object_is_named(crds: ClusterUnderTest, namespace: str) -> None:
    result = Rollouts(crds, namespace).cli("status", "nothing-here", check=False)
    assert result.returncode == 1
    assert f"modeldeployment 'nothing-here' not found in namespace '{namespace}'" in result.stderr


def test_a_command_that_does_not_apply_now_is_refused_before_writing(
    operator: OperatorProcess, namespace: str
) -> None:
    rollouts = Rollouts(operator.cluster, namespace)
    body = example("bluegreen")
    rollouts.create(body)
    name = body["metadata"]["name"]
    rollouts.wait_phase(name, "Healthy")
    result = rollouts.cli("promote", name, check=False)
    assert result.returncode == 3 and "promote does not apply now" in result.stderr
    annotations = rollouts.get(name)["metadata"].get("annotations") or {}
    assert "modelrollout.io/command" not in annotations


def test_an_account_without_rbac_is_told_what_it_needs(
    crds: ClusterUnderTest, namespace: str, tmp_path: Path
) -> None:
    core = client.CoreV1Api(crds.api)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="nobody"))
    )
    token = core.create_namespaced_service_account_token(
        "nobody", namespace, client.AuthenticationV1TokenRequest(spec={"audiences": []})
    ).status.token
    admin = yaml.safe_load(crds.kubeconfig.read_text())
    cluster = admin["clusters"][0]
    kubeconfig = tmp_path / "nobody.yaml"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "nobody", "user": {"token": token}}],
                "contexts": [
                    {"name": "nobody", "context": {"cluster": cluster["name"], "user": "nobody"}}
                ],
                "current-context": "nobody",
            }
        )
    )
    rollouts = Rollouts(crds, namespace)
    rollouts.create(example("canary"))
    result = rollouts.cli_as(kubeconfig, "abort", "fraud")
    assert result.returncode == 4
    assert "not allowed to get modeldeployment 'fraud'" in result.stderr
    assert "RBAC 'get' on modeldeployments.modelrollout.io" in result.stderr
