"""The progress deadline on real pods: a new revision whose image does not exist
on the node, or whose model server refuses its artifact (sha256 mismatch), never
becomes ready; at its deadline the operator rolls back, naming what kubelet and
the server's termination message report, while the stable revision's real pods
keep every replica ready and answer every client of the Service's ClusterIP
(routed by kube-proxy).

The model servers here are real pods of the model-server image (`args: [serve]`),
their artifact downloaded over HTTP from a store on this machine's loopback
(forwarded to the pods), their readiness probe gating the Service's endpoints."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from modelrollout.api import names as n
from modelrollout.devenv.stack import Artifact, ServingStack
from modelrollout.devenv.traffic import wait_until_routed
from support.clients import Clients, Predictions
from support.kube import ClusterUnderTest
from support.realnode import http_get, python_pod
from support.rollouts import Rollouts, plain_canary
from support.waiting import sampled, wait_for

pytestmark = pytest.mark.e2e

DEADLINE = 20


def real_canary(kube: ClusterUnderTest, name: str) -> dict[str, Any]:
    """A canary whose pods are the model-server image serving a file on the real node;
    the stable ones answer `stable`."""
    body = plain_canary(name, [{"setWeight": 50}, {"pause": {}}], replicas=2)
    pod = python_pod(kube, name, files={"whoami": "stable"})
    body["spec"]["template"] = {"spec": pod["spec"]}
    body["spec"]["service"] = {"port": 80, "targetPort": "http"}
    body["spec"]["progressDeadlineSeconds"] = DEADLINE
    return body


def test_a_revision_whose_image_is_missing_is_rolled_back_at_its_deadline(
    kube: ClusterUnderTest, rollouts: Rollouts
) -> None:
    body = real_canary(kube, "fraud")
    rollouts.create(body)
    stable = rollouts.wait_phase("fraud", "Healthy", timeout=120)["stableRevision"]
    cluster_ip = rollouts.core.read_namespaced_service("fraud", rollouts.namespace).spec.cluster_ip
    url = f"http://{cluster_ip}/whoami"
    wait_for(lambda: _answers(url), timeout=30, what="the Service's ClusterIP")

    missing = copy.deepcopy(body["spec"]["template"])
    missing["spec"]["containers"][0]["image"] = "modelrollout:no-such-image"
    started = time.monotonic()
    with (
        Clients(url) as clients,
        sampled(lambda: rollouts.replicas("fraud").get(stable, (0, 0))) as stable_sizes,
    ):
        rollouts.patch_spec("fraud", {"model": {"version": "2"}, "template": missing})
        status = rollouts.wait_status(
            "fraud",
            "rolled back for the progress deadline",
            lambda s: s.get("lastRollback", {}).get("reason") == "ProgressDeadlineExceeded",
            timeout=DEADLINE + 90,
        )
    took = time.monotonic() - started
    assert (status["phase"], status["reason"]) == ("Degraded", "ProgressDeadlineExceeded")
    assert "ErrImageNeverPull" in status["message"], status["message"]
    assert "ErrImageNeverPull" in status["lastRollback"]["message"]
    assert status["stableRevision"] == stable
    assert rollouts.selector("fraud") == {n.LABEL_DEPLOYMENT: "fraud", n.LABEL_REVISION: stable}
    assert took >= DEADLINE, f"rolled back after {took:.1f} s, before the {DEADLINE} s deadline"
    # The stable revision never lost a ready replica, and its clients got every answer.
    assert stable_sizes and all(size == (2, 2) for size in stable_sizes), sorted(set(stable_sizes))
    assert clients.answers and set(clients.answers) == {"stable"}, clients.answers
    print(
        f"\n[figure] missing image: rolled back {took:.1f} s after the spec change "
        f"(deadline {DEADLINE} s); {clients.answers['stable']} requests to the ClusterIP, "
        "all answered by stable"
    )


def _answers(url: str) -> bool:
    try:
        return http_get(url, timeout=2) == "stable"
    except OSError:
        return False


def test_a_model_server_that_refuses_its_artifact_is_rolled_back_at_its_deadline(
    rollouts: Rollouts, stack: ServingStack, models: dict[str, Artifact]
) -> None:
    body = plain_canary("wine", [{"setWeight": 50}, {"pause": {}}], replicas=2)
    body["spec"].update(stack.served_spec(models["baseline"], "1"))
    body["spec"]["service"] = {"port": 80, "targetPort": "http"}
    body["spec"]["progressDeadlineSeconds"] = DEADLINE
    rollouts.create(body)
    stable = rollouts.wait_phase("wine", "Healthy", timeout=180)["stableRevision"]
    cluster_ip = rollouts.core.read_namespaced_service("wine", rollouts.namespace).spec.cluster_ip
    url = f"http://{cluster_ip}/v2/models/wine/infer"
    wait_until_routed(url)
    with (
        Predictions(url) as clients,
        sampled(lambda: rollouts.replicas("wine").get(stable, (0, 0))) as stable_sizes,
    ):
        # Version 2 names the same file with another digest: a stale copy, as far
        # as the server can tell. It refuses to load it and exits.
        rollouts.patch_spec("wine", {"model": {"version": "2", "sha256": "0" * 64}})
        status = rollouts.wait_status(
            "wine",
            "rolled back for the progress deadline",
            lambda s: s.get("lastRollback", {}).get("reason") == "ProgressDeadlineExceeded",
            timeout=DEADLINE + 120,
        )
    message = status["lastRollback"]["message"]
    assert "sha256 mismatch" in message, message
    assert status["stableRevision"] == stable
    assert stable_sizes and all(size == (2, 2) for size in stable_sizes), sorted(set(stable_sizes))
    assert clients.answers and set(clients.answers) == {"version 1"}, clients.answers
    print(
        f"\n[figure] sha256 mismatch: {clients.answers['version 1']} predictions through the "
        "ClusterIP during the rollout, all by version 1; rolled back naming the mismatch"
    )
