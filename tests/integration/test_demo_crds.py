"""`make demo` installs the CRDs on its cluster with server-side apply, where a
user may have applied them before with plain `kubectl apply -f crds/` (the
README's tour on the same local cluster, or an older checkout). The demo owns
the CRDs on its own cluster, so it forces: a field another manager set, to a
value the demo's apply changes, would otherwise fail it with a conflict. This
runs its CRD install against such a cluster."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from modelrollout.devenv.demo import install_crds
from modelrollout.devenv.tools import REPO_ROOT
from support.kube import ClusterUnderTest

pytestmark = pytest.mark.integration

CRD_FILE = REPO_ROOT / "crds" / "modeldeployment.yaml"
CRD_NAME = "modeldeployments.modelrollout.io"


def crd() -> dict[str, Any]:
    return dict(yaml.safe_load(CRD_FILE.read_text()))


def dry_run_schema(body: dict[str, Any]) -> dict[str, Any]:
    spec = body["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return dict(spec["properties"]["analysis"]["properties"]["metrics"]["items"]["properties"])


def older_checkout(kube: ClusterUnderTest) -> None:
    """The CRD as crds/ had it before its dryRun description was quoted (the comma
    made `never decide.` a null key, which the API server drops, so the stored CRD
    never matched the applied one), applied with plain `kubectl apply`."""
    body = crd()
    fields = body["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    metric = fields["properties"]["analysis"]["properties"]["metrics"]["items"]["properties"]
    metric["dryRun"] = {"type": "boolean", "default": False,
                        "description": "Measure and report", "never decide.": None}  # fmt: skip
    kube.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))


def changed_by_another_manager(kube: ClusterUnderTest) -> None:
    """This checkout's CRD applied with plain `kubectl apply`, then edited by hand
    (`kubectl patch`: the manager kubectl-patch owns the change)."""
    kube.kubectl("apply", "-f", str(CRD_FILE))
    edit = [{"op": "replace", "path": "/spec/versions/0/schema/openAPIV3Schema/description",
             "value": "edited by hand"}]  # fmt: skip
    kube.kubectl("patch", "crd", CRD_NAME, "--type=json", "-p", json.dumps(edit))


def stored(kube: ClusterUnderTest) -> dict[str, Any]:
    return dict(
        json.loads(kube.kubectl("get", "crd", CRD_NAME, "--show-managed-fields", "-o", "json"))
    )


@pytest.mark.parametrize("before", [older_checkout, changed_by_another_manager])
def test_the_demo_installs_its_crds_over_ones_applied_before_by_hand(
    crds: ClusterUnderTest, before: Callable[[ClusterUnderTest], None]
) -> None:
    # `crds`: the CRDs server-side applied, as the tour does; the session's other
    # tests rely on them, so they are changed in place, never deleted.
    kube = crds
    try:
        before(kube)
        managers = {m["manager"] for m in stored(kube)["metadata"]["managedFields"]}
        assert managers & {"kubectl-client-side-apply", "kubectl-patch"}, managers
        ours = copy.deepcopy(crd())
        assert (
            stored(kube)["spec"]["versions"][0]["schema"] != ours["spec"]["versions"][0]["schema"]
        ), "the CRD applied before should differ from crds/"

        install_crds(kube.cluster)

        schema = stored(kube)["spec"]["versions"][0]["schema"]
        assert schema == ours["spec"]["versions"][0]["schema"], "the CRD is not the one in crds/"
        assert dry_run_schema(stored(kube))["dryRun"]["description"] == (
            "Measure and report, never decide."
        )
    finally:
        # Whatever happened, leave the session's cluster with the repo's CRDs.
        kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
        kube.kubectl("wait", "--for=condition=Established", "crd", CRD_NAME, "--timeout=60s")
