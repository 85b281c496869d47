"""The ModelDeployment's scale subresource on the real control plane: `kubectl
scale` moves spec.replicas and the operator splits it; `/scale` reports the pods
that answer clients; spec.autoscaling makes an HPA that the real
kube-controller-manager acts on through `/scale`, replaced when spec.autoscaling
changes and deleted when it goes; someone else's HPA of that name is reported,
not taken over.

The HPA controller scales to minReplicas when the current count is below it
without reading any metric, which is what these tests use; scaling on CPU under
load needs metrics-server and real pods (the e2e tier's).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from modelrollout.api import names as n
from support.operator import OperatorProcess
from support.rollouts import Rollouts, plain_canary
from support.waiting import wait_for

pytestmark = pytest.mark.integration

# The HPA controller looks every 15 s (--horizontal-pod-autoscaler-sync-period).
HPA_SECONDS = 90


@pytest.fixture
def rollouts(operator: OperatorProcess, namespace: str) -> Iterator[Rollouts]:
    yield Rollouts(operator.cluster, namespace)


def scale_of(rollouts: Rollouts, name: str) -> dict[str, Any]:
    path = f"/apis/{n.GROUP}/{n.VERSION}/namespaces/{rollouts.namespace}/{n.PLURAL}/{name}/scale"
    result: dict[str, Any] = json.loads(rollouts.kube.kubectl("get", "--raw", path))
    return result


def hpa(rollouts: Rollouts, name: str) -> client.V2HorizontalPodAutoscaler | None:
    try:
        return client.AutoscalingV2Api(rollouts.kube.api).read_namespaced_horizontal_pod_autoscaler(
            name, rollouts.namespace
        )
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


def test_kubectl_scale_moves_the_total_and_scale_reports_the_serving_pods(
    rollouts: Rollouts,
) -> None:
    rollouts.create(plain_canary("fraud", [{"setWeight": 25}, {"pause": {}}], replicas=2))
    rollouts.wait_phase("fraud", "Healthy")
    (stable,) = rollouts.replicas("fraud")
    rollouts.kube.kubectl("scale", f"{n.PLURAL}/fraud", "--replicas=5", "-n", rollouts.namespace)
    wait_for(
        lambda: rollouts.replicas("fraud") == {stable: (5, 5)} or None,
        timeout=60,
        what="the stable Deployment at 5 ready",
    )
    scale = wait_for(
        lambda: (s := scale_of(rollouts, "fraud"))["status"].get("replicas") == 5 and s,
        timeout=30,
        what="/scale reporting 5",
    )
    assert scale["spec"]["replicas"] == 5
    assert scale["status"]["selector"] == (
        f"{n.LABEL_DEPLOYMENT}=fraud,{n.LABEL_REVISION} in ({stable})"
    )
    # The selector is a real one: it matches exactly the serving pods.
    pods = rollouts.core.list_namespaced_pod(
        rollouts.namespace, label_selector=scale["status"]["selector"]
    ).items
    assert len(pods) == 5


def test_spec_autoscaling_makes_an_hpa_the_controller_manager_scales_through(
    rollouts: Rollouts,
) -> None:
    body = plain_canary("fraud", [{"setWeight": 25}, {"pause": {}}], replicas=1)
    body["spec"]["autoscaling"] = {"minReplicas": 3, "maxReplicas": 6}
    rollouts.create(body)
    made = wait_for(lambda: hpa(rollouts, "fraud"), timeout=60, what="the operator's HPA")
    target = made.spec.scale_target_ref
    assert (target.api_version, target.kind, target.name) == (n.API_VERSION, n.KIND, "fraud")
    assert made.metadata.owner_references[0].kind == n.KIND
    # The real HPA controller: replicas below minReplicas -> minReplicas, via /scale.
    wait_for(
        lambda: rollouts.get("fraud")["spec"]["replicas"] == 3 or None,
        timeout=HPA_SECONDS,
        what="the HPA controller raising spec.replicas to minReplicas",
    )
    rollouts.wait_status("fraud", "3 serving pods", lambda s: s.get("replicas") == 3)

    rollouts.patch_spec("fraud", {"autoscaling": {"minReplicas": 4, "maxReplicas": 6}})
    wait_for(
        lambda: ((h := hpa(rollouts, "fraud")) is not None and h.spec.min_replicas == 4) or None,
        timeout=60,
        what="the HPA's spec replaced",
    )
    wait_for(
        lambda: rollouts.get("fraud")["spec"]["replicas"] == 4 or None,
        timeout=HPA_SECONDS,
        what="the HPA controller acting on the new minReplicas",
    )
    rollouts.patch_spec("fraud", {"autoscaling": None})
    wait_for(lambda: hpa(rollouts, "fraud") is None or None, timeout=60, what="the HPA deleted")
    assert rollouts.get("fraud")["spec"]["replicas"] == 4, "the last total stays"


def test_someone_elses_hpa_of_that_name_is_reported_and_left_alone(rollouts: Rollouts) -> None:
    theirs = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "fraud"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "other"},
            "minReplicas": 1,
            "maxReplicas": 2,
        },
    }
    autoscaling = client.AutoscalingV2Api(rollouts.kube.api)
    autoscaling.create_namespaced_horizontal_pod_autoscaler(rollouts.namespace, theirs)
    body = plain_canary("fraud", [{"setWeight": 25}, {"pause": {}}], replicas=1)
    body["spec"]["autoscaling"] = {"minReplicas": 2, "maxReplicas": 3}
    rollouts.create(body)
    status = rollouts.wait_status(
        "fraud", "AutoscalerConflict", lambda s: s.get("reason") == "AutoscalerConflict"
    )
    assert status["phase"] == "Degraded"
    assert "is not this ModelDeployment's" in status["message"]
    left = hpa(rollouts, "fraud")
    assert left is not None and left.spec.scale_target_ref.name == "other"
    assert not left.metadata.owner_references
    # Theirs deleted: within the operator's re-check, it makes its own and deploys.
    autoscaling.delete_namespaced_horizontal_pod_autoscaler("fraud", rollouts.namespace)
    rollouts.wait_phase("fraud", "Healthy", timeout=90)
    made = hpa(rollouts, "fraud")
    assert made is not None and made.spec.scale_target_ref.kind == n.KIND


def test_kubectl_scale_during_a_blue_green_preview_grows_blue_and_keeps_the_preview(
    rollouts: Rollouts,
) -> None:
    body = plain_canary("fraud", [{"setWeight": 25}], replicas=2)
    body["spec"]["strategy"] = {"blueGreen": {"previewReplicas": 1, "scaleDownDelaySeconds": 5}}
    rollouts.create(body)
    rollouts.wait_phase("fraud", "Healthy")
    (blue,) = rollouts.replicas("fraud")
    rollouts.patch_spec("fraud", {"model": {"version": "2"}})
    rollouts.wait_status(
        "fraud", "the preview waiting", lambda s: s.get("reason") == "AwaitingPromotion"
    )
    (green,) = set(rollouts.replicas("fraud")) - {blue}
    rollouts.kube.kubectl("scale", f"{n.PLURAL}/fraud", "--replicas=4", "-n", rollouts.namespace)
    wait_for(
        lambda: rollouts.replicas("fraud") == {blue: (4, 4), green: (1, 1)} or None,
        timeout=60,
        what="blue at the new total, the preview as it was",
    )
    assert rollouts.status("fraud")["reason"] == "AwaitingPromotion"
    wait_for(  # written at the reconcile after the Deployment's
        lambda: scale_of(rollouts, "fraud")["status"]["replicas"] == 4 or None,
        timeout=30,
        what="/scale counting blue's 4 pods, not the preview's",
    )
    rollouts.cli("promote", "fraud")
    wait_for(
        lambda: rollouts.replicas("fraud").get(green) == (4, 4) or None,
        timeout=60,
        what="green at the current total before the switch",
    )
