"""spec.model.registry: what a user may write, and the revision a resolved version gets."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from modelrollout.api import SpecError, parse_spec, spec_revision
from modelrollout.api import names as n
from modelrollout.api.ownership import Owner
from modelrollout.api.spec import MODEL_NEEDS_VERSION, REGISTRY_EXCLUSIVE, REGISTRY_ONE_OF
from modelrollout.kube.manifests import revision_deployment

pytestmark = pytest.mark.unit

DIGEST = "ab" * 32
BASE: dict[str, Any] = {
    "replicas": 2,
    "model": {"name": "churn", "registry": {"name": "churn-model", "alias": "candidate"}},
    "template": {"spec": {"containers": [{"name": "server", "image": "srv:1"}]}},
    "strategy": {"canary": {"steps": [{"setWeight": 50}]}},
}


def _with_model(model: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(BASE)
    spec["model"] = model
    return spec


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"name": "m", "registry": {"name": "r"}}, REGISTRY_ONE_OF),
        ({"name": "m", "registry": {"name": "r", "version": "2", "alias": "a"}}, REGISTRY_ONE_OF),
        (
            {"name": "m", "version": "2", "registry": {"name": "r", "version": "2"}},
            REGISTRY_EXCLUSIVE,
        ),
        (
            {"name": "m", "uri": "file:///m.skops", "registry": {"name": "r", "alias": "a"}},
            REGISTRY_EXCLUSIVE,
        ),
        ({"name": "m"}, MODEL_NEEDS_VERSION),
    ],
)
def test_a_model_comes_from_exactly_one_place(model: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message.split(":")[0]):
        parse_spec(_with_model(model))


@pytest.mark.parametrize(
    ("registry", "field"),
    [
        ({"name": "r", "version": "v2"}, "version"),
        ({"name": "r", "version": "0"}, "version"),
        ({"name": "r", "alias": "has space"}, "alias"),
        ({"name": "r", "alias": "a", "uri": "ftp://mlflow"}, "uri"),
    ],
)
def test_registry_fields_are_checked(registry: dict[str, str], field: str) -> None:
    with pytest.raises(SpecError, match=f"spec.model.registry.{field}"):
        parse_spec(_with_model({"name": "m", "registry": registry}))


def test_the_champion_alias_defaults_to_champion() -> None:
    spec = parse_spec(BASE)
    assert spec.model.registry is not None
    assert spec.model.registry.champion == "champion"
    named = _with_model(
        {"name": "m", "registry": {"name": "r", "alias": "a", "championAlias": "prod"}}
    )
    registry = parse_spec(named).model.registry
    assert registry is not None and registry.champion == "prod"


def test_tracking_an_alias_and_pinning_its_version_are_the_same_revision() -> None:
    tracking = parse_spec(BASE)
    pinned = parse_spec(
        _with_model({"name": "churn", "registry": {"name": "churn-model", "version": "3"}})
    )
    uri = "http://mlflow.ml:5000"
    a = tracking.model_copy(update={"model": tracking.model.resolved("3", DIGEST, uri)})
    b = pinned.model_copy(update={"model": pinned.model.resolved("3", DIGEST, uri)})
    assert spec_revision(a) == spec_revision(b)
    newer = tracking.model_copy(update={"model": tracking.model.resolved("4", DIGEST, uri)})
    assert spec_revision(newer) != spec_revision(a)


def test_the_servers_load_the_resolved_version_from_the_registry() -> None:
    spec = parse_spec(BASE)
    resolved = spec.model_copy(
        update={"model": spec.model.resolved("3", DIGEST, "http://mlflow.ml:5000")}
    )
    template = copy.deepcopy(resolved.template)
    template["spec"]["containers"][0]["env"] = [
        {"name": "MLFLOW_TRACKING_URI", "value": "http://elsewhere"},
        {"name": "KEEP", "value": "1"},
    ]
    resolved = resolved.model_copy(update={"template": template})
    owner = Owner(name="churn", namespace="ml", uid="u")
    deployment = revision_deployment(owner, resolved, spec_revision(resolved), 2)
    env = {
        e["name"]: e["value"]
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env[n.ENV_MODEL_URI] == "models:/churn-model/3"
    assert env[n.ENV_MODEL_SHA256] == DIGEST
    assert env[n.ENV_MODEL_VERSION] == "3"
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow.ml:5000"
    assert env["KEEP"] == "1"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels[n.LABEL_MODEL_VERSION] == "3"


def test_a_model_without_a_registry_gets_no_tracking_uri() -> None:
    spec = parse_spec(_with_model({"name": "m", "version": "7", "uri": "file:///m.skops"}))
    owner = Owner(name="m", namespace="ml", uid="u")
    deployment = revision_deployment(owner, spec, spec_revision(spec), 1)
    names = {e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "MLFLOW_TRACKING_URI" not in names
