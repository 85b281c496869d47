"""The progress deadline on real pods: a new revision whose image does not exist
on the node, or whose model server refuses its artifact (sha256 mismatch), never
becomes ready; at its deadline the operator rolls back, naming what kubelet and
the server's termination message report, while the stable revision's real pods
keep every replica ready and answer every client of the Service's ClusterIP
(routed by kube-proxy).

The model servers here are real pods of the project's image (`args: [serve]`),
their artifact downloaded over HTTP from a store on this machine's loopback
(forwarded to the pods), their readiness probe gating the Service's endpoints."""

from __future__ import annotations

import copy
import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from modelrollout.api import names as n
from modelrollout.devenv.stack import FAST_SERVER_ENV, Artifact
from modelserver.datasets import load_dataset
from modelserver.loadgen import LoadConfig, prepare_requests
from support.kube import ClusterUnderTest
from support.realnode import (
    RESTRICTED,
    http_get,
    on_real_node,
    python_pod,
    reachable_from_pods,
    workload_image,
)
from support.rollouts import Rollouts, plain_canary
from support.store import running_store
from support.waiting import sampled, wait_for

pytestmark = pytest.mark.e2e

DEADLINE = 20
# Requests to the ClusterIP during the rollout: one every 0.1 s, at most this many.
MAX_REQUESTS = 1200


def real_canary(kube: ClusterUnderTest, name: str) -> dict[str, Any]:
    """A canary whose pods are the project's image serving a file on the real node;
    the stable ones answer `stable`."""
    body = plain_canary(name, [{"setWeight": 50}, {"pause": {}}], replicas=2)
    pod = python_pod(kube, name, files={"whoami": "stable"})
    body["spec"]["template"] = {"spec": pod["spec"]}
    body["spec"]["service"] = {"port": 80, "targetPort": "http"}
    body["spec"]["progressDeadlineSeconds"] = DEADLINE
    return body


class Clients:
    """A bounded loop of GETs to a URL in the background; what each got back."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: Counter[str] = Counter()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def ask(self, index: int) -> str:
        return http_get(self.url, timeout=2)

    def _run(self) -> None:
        for index in range(MAX_REQUESTS):
            if self._done.wait(0.1):
                return
            try:
                self.answers[self.ask(index)] += 1
            except (OSError, urllib.error.URLError) as error:
                self.answers[f"error: {type(error).__name__}"] += 1

    def __enter__(self) -> Clients:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=10)


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


def model_server_canary(
    kube: ClusterUnderTest, name: str, artifact: Artifact, uri: str, *, sha256: str
) -> dict[str, Any]:
    """A canary of real model-server pods (`args: [serve]`) on the real node, the
    artifact downloaded over HTTP into an emptyDir, readiness gating endpoints."""
    body = plain_canary(name, [{"setWeight": 50}, {"pause": {}}], replicas=2)
    env = {**FAST_SERVER_ENV, **artifact.server_env(), "MODELSERVER_ARTIFACT_DIR": "/models"}
    container = {
        "name": "server",
        "image": workload_image(kube),
        "imagePullPolicy": "Never",
        "args": ["serve"],
        "ports": [{"name": "http", "containerPort": 8080}],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "readinessProbe": {
            "httpGet": {"path": "/v2/health/ready", "port": "http"},
            "periodSeconds": 1,
        },
        "securityContext": {**RESTRICTED, "readOnlyRootFilesystem": True},
        "volumeMounts": [{"name": "models", "mountPath": "/models"}],
    }
    pod_spec = on_real_node(
        {
            "containers": [container],
            "volumes": [{"name": "models", "emptyDir": {}}],
            "terminationGracePeriodSeconds": 5,
        }
    )
    body["spec"]["model"] = {"name": "wine", "version": "1", "uri": uri, "sha256": sha256}
    body["spec"]["template"] = {"spec": pod_spec}
    body["spec"]["service"] = {"port": 80, "targetPort": "http"}
    body["spec"]["progressDeadlineSeconds"] = DEADLINE
    return body


class Predictions(Clients):
    """Bounded inference requests to the Service; answers counted by model version."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        config = LoadConfig(urls=(), model="wine", dataset="wine")
        self._bodies = [p.body for p in prepare_requests(config, load_dataset("wine"), 50)]

    def ask(self, index: int) -> str:
        request = urllib.request.Request(
            self.url, data=self._bodies[index % len(self._bodies)],
            headers={"Content-Type": "application/json"}, method="POST",
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=5) as answer:
            return f"version {json.load(answer)['model_version']}"


def test_a_model_server_that_refuses_its_artifact_is_rolled_back_at_its_deadline(
    kube: ClusterUnderTest, rollouts: Rollouts, models: dict[str, Artifact]
) -> None:
    baseline = models["baseline"]
    local = Path(urlsplit(baseline.uri).path)
    with running_store() as store, reachable_from_pods(kube, store.url) as store_url:
        store.put_file(f"/{local.name}", local)
        store.put_file(f"/{local.name}.profile.json", f"{local}.profile.json")
        uri = f"{store_url}/{local.name}"
        body = model_server_canary(kube, "wine", baseline, uri, sha256=baseline.sha256)
        rollouts.create(body)
        stable = rollouts.wait_phase("wine", "Healthy", timeout=180)["stableRevision"]
        assert len(store.requests(f"/{local.name}")) == 2, "each pod downloaded the artifact"
        cluster_ip = rollouts.core.read_namespaced_service(
            "wine", rollouts.namespace
        ).spec.cluster_ip
        url = f"http://{cluster_ip}/v2/models/wine/infer"
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
