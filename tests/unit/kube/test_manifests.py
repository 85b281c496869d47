"""The objects a ModelDeployment owns carry the names, labels and environment of
docs/architecture.md ("Names"), and an owner reference so deleting it deletes them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelrollout.api import parse_spec
from modelrollout.api.ownership import Owner
from modelrollout.kube.manifests import read_mirror, revision_deployment, shadow_config
from modelrollout.rollout import Mirror
from modelrollout.traffic.services import service

pytestmark = pytest.mark.unit

OWNER = Owner(name="fraud", namespace="ml", uid="uid-1")


def spec(**model: Any) -> Any:
    return parse_spec(
        {
            "replicas": 4,
            "model": {"name": "fraud-detector", "version": "7", **model},
            "template": {
                "metadata": {"labels": {"team": "risk"}},
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "image": "ghcr.io/acme/modelrollout:0.1",
                            "env": [
                                {"name": "LOG_LEVEL", "value": "info"},
                                {"name": "MODEL_VERSION", "value": "stale"},
                            ],
                        },
                        {"name": "proxy", "image": "envoy:1"},
                    ]
                },
            },
            "service": {"port": 80, "targetPort": "http"},
            "strategy": {"canary": {"steps": [{"setWeight": 50}]}},
        }
    )


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}


def test_revision_deployment_is_named_labelled_and_owned() -> None:
    deployment = revision_deployment(OWNER, spec(), "9a1b2e3c4d", replicas=2)
    assert deployment["metadata"]["name"] == "fraud-9a1b2e3c4d"
    assert deployment["metadata"]["namespace"] == "ml"
    assert deployment["spec"]["replicas"] == 2
    wanted_labels = {
        "app.kubernetes.io/name": "fraud",
        "app.kubernetes.io/managed-by": "modelrollout",
        "modelrollout.io/deployment": "fraud",
        "modelrollout.io/revision": "9a1b2e3c4d",
        "modelrollout.io/model-version": "7",
    }
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pod_labels == {"team": "risk", **wanted_labels}
    assert deployment["metadata"]["labels"] == wanted_labels
    assert deployment["spec"]["selector"]["matchLabels"] == {
        "modelrollout.io/deployment": "fraud",
        "modelrollout.io/revision": "9a1b2e3c4d",
    }
    (reference,) = deployment["metadata"]["ownerReferences"]
    assert reference["uid"] == "uid-1" and reference["kind"] == "ModelDeployment"
    assert reference["controller"] is True


def test_model_env_is_injected_into_every_container_and_wins_over_the_template() -> None:
    sha = "a" * 64
    deployment = revision_deployment(
        OWNER, spec(uri="file:///models/f.skops", sha256=sha), "9a1b2e3c4d", replicas=1
    )
    server, proxy = deployment["spec"]["template"]["spec"]["containers"]
    expected = {
        "MODEL_NAME": "fraud-detector",
        "MODEL_VERSION": "7",
        "MODEL_URI": "file:///models/f.skops",
        "MODEL_SHA256": sha,
        "MODELROLLOUT_REVISION": "9a1b2e3c4d",
    }
    assert env_of(server) == {"LOG_LEVEL": "info", **expected}
    assert env_of(proxy) == expected


def test_optional_model_fields_are_not_injected_empty() -> None:
    deployment = revision_deployment(OWNER, spec(), "9a1b2e3c4d", replicas=1)
    names = set(env_of(deployment["spec"]["template"]["spec"]["containers"][1]))
    assert "MODEL_URI" not in names and "MODEL_SHA256" not in names


def test_building_does_not_alter_the_spec_template() -> None:
    the_spec = spec()
    before = repr(the_spec.template)
    revision_deployment(OWNER, the_spec, "9a1b2e3c4d", replicas=1)
    assert repr(the_spec.template) == before


@pytest.mark.parametrize(
    ("role", "revision", "name", "selector"),
    [
        ("main", None, "fraud", {"modelrollout.io/deployment": "fraud"}),
        (
            "main",
            "5d8f7c0000",
            "fraud",
            {"modelrollout.io/deployment": "fraud", "modelrollout.io/revision": "5d8f7c0000"},
        ),
        (
            "canary",
            "9a1b2e3c4d",
            "fraud-canary",
            {"modelrollout.io/deployment": "fraud", "modelrollout.io/revision": "9a1b2e3c4d"},
        ),
        (
            "preview",
            "9a1b2e3c4d",
            "fraud-preview",
            {"modelrollout.io/deployment": "fraud", "modelrollout.io/revision": "9a1b2e3c4d"},
        ),
    ],
)
def test_services_select_by_role(
    role: Any, revision: str | None, name: str, selector: dict[str, str]
) -> None:
    svc = service(OWNER, spec(), role, revision)
    assert svc["metadata"]["name"] == name
    assert svc["spec"]["selector"] == selector
    assert svc["spec"]["ports"] == [
        {"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http"}
    ]
    assert svc["metadata"]["ownerReferences"][0]["uid"] == "uid-1"


def test_every_revision_mounts_the_shadow_config_optionally() -> None:
    """A later rollout's champion is a revision made before its shadow step was written."""
    pod = revision_deployment(OWNER, spec(), "abc123", 2)["spec"]["template"]["spec"]
    assert pod["volumes"] == [
        {"name": "modelrollout-shadow", "configMap": {"name": "fraud-shadow", "optional": True}}
    ]
    for container in pod["containers"]:
        assert container["volumeMounts"] == [
            {
                "name": "modelrollout-shadow",
                "mountPath": "/etc/modelrollout/shadow",
                "readOnly": True,
            }
        ]


def test_the_shadow_config_names_the_champion_the_challenger_and_the_address() -> None:
    mirror = Mirror(25, "old1", "new2")
    body = shadow_config(OWNER, mirror, "http://10.96.0.7:80")
    assert body["metadata"]["name"] == "fraud-shadow"
    assert body["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert json.loads(body["data"]["shadow.json"]) == {
        "percent": 25,
        "champion": "old1",
        "challenger": "new2",
        "url": "http://10.96.0.7:80",
    }
    assert read_mirror(body["data"]) == mirror
    off = shadow_config(OWNER, None, "")
    assert json.loads(off["data"]["shadow.json"]) == {"percent": 0}
    assert read_mirror(off["data"]) is None
    assert read_mirror({"shadow.json": "{not json"}) is None
