"""The API server, with the project's CRD, agrees with the pydantic models: it
accepts every example and rejects every invalid fixture with the rule's message."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelrollout.api import SpecError, parse_spec
from modelrollout.api import names as n
from modelrollout.devenv.tools import REPO_ROOT
from support.kube import ClusterUnderTest

pytestmark = pytest.mark.integration

EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.yaml"))
INVALID = sorted((REPO_ROOT / "tests" / "fixtures" / "invalid").glob("*.yaml"))


def model_deployments(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == n.KIND]


def expected_message(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} must start with '# expect: ...'"
    return first.removeprefix("# expect: ").strip()


def create(kube: ClusterUnderTest, namespace: str, body: dict[str, Any], dry_run: bool) -> None:
    body = copy.deepcopy(body)
    body["metadata"]["namespace"] = namespace
    client.CustomObjectsApi(kube.api).create_namespaced_custom_object(
        n.GROUP, n.VERSION, namespace, n.PLURAL, body, dry_run="All" if dry_run else None
    )


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_api_server_and_the_models_accept_every_example(
    crds: ClusterUnderTest, namespace: str, path: Path
) -> None:
    documents = model_deployments(path)
    assert documents, f"{path.name} holds no {n.KIND}"
    for body in documents:
        parse_spec(body["spec"])
        create(crds, namespace, body, dry_run=False)
        stored = client.CustomObjectsApi(crds.api).get_namespaced_custom_object(
            n.GROUP, n.VERSION, namespace, n.PLURAL, body["metadata"]["name"]
        )
        # What the API server stored (with its defaults) still parses the same way.
        assert parse_spec(stored["spec"]) == parse_spec(body["spec"])


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_the_api_server_and_the_models_reject_every_invalid_manifest(
    crds: ClusterUnderTest, namespace: str, path: Path
) -> None:
    message = expected_message(path)
    for body in model_deployments(path):
        with pytest.raises(SpecError):
            parse_spec(body.get("spec"))
        with pytest.raises(ApiException) as rejected:
            create(crds, namespace, body, dry_run=True)
        assert rejected.value.status == 422, rejected.value.body
        said = json.loads(rejected.value.body or "{}").get("message", "")
        assert message in said


def test_kubectl_apply_of_an_invalid_manifest_prints_the_cel_message(
    crds: ClusterUnderTest, namespace: str
) -> None:
    path = REPO_ROOT / "tests" / "fixtures" / "invalid" / "two-strategies.yaml"
    result = crds.cluster.kubectl("apply", "-n", namespace, "-f", str(path), check=False)
    assert result.returncode != 0
    assert expected_message(path) in result.stderr
