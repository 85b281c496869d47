"""The API server, with the project's CRD, agrees with the pydantic models: it
accepts every example (every document of it, applied for real) and rejects every
invalid fixture with the rule's message."""

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
    crds: ClusterUnderTest, namespace: str, path: Path, tmp_path: Path
) -> None:
    """Every document of the example (the ModelDeployments and what they need,
    e.g. drift-gate.yaml's Secret) is created for real by a server-side apply,
    as `kubectl apply` would, so none rots."""
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    bodies = [d for d in documents if d.get("kind") == n.KIND]
    assert bodies, f"{path.name} holds no {n.KIND}"
    for body in bodies:
        parse_spec(body["spec"])
    for document in documents:
        document["metadata"]["namespace"] = namespace
    manifest = tmp_path / path.name
    manifest.write_text(yaml.safe_dump_all(documents))
    applied = crds.cluster.kubectl("apply", "--server-side", "-f", str(manifest), check=False)
    assert applied.returncode == 0, f"{path.name}:\n{applied.stderr}"
    stored = json.loads(crds.kubectl("get", "-f", str(manifest), "-o", "json"))
    items = stored["items"] if stored["kind"] == "List" else [stored]
    kinds = [(d["kind"], d["metadata"]["name"]) for d in documents]
    assert [(d["kind"], d["metadata"]["name"]) for d in items] == kinds
    for body in bodies:
        (item,) = [
            i
            for i in items
            if i["kind"] == n.KIND and i["metadata"]["name"] == body["metadata"]["name"]
        ]
        # What the API server stored (with its defaults) still parses the same way.
        assert parse_spec(item["spec"]) == parse_spec(body["spec"])


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
