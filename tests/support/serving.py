"""ModelDeployments that real model-server pods run, for the end-to-end tier: the
trained artifact downloaded over HTTP from the stack's store and checked against
its sha256, small drift and feedback windows so a few seconds of traffic say
something, and analysis against the stack's Prometheus with short intervals."""

from __future__ import annotations

import copy
from typing import Any

from modelrollout.devenv.stack import (
    ACCURACY_QUERY,
    DRIFT_QUERY,
    MAE_QUERY,
    MODEL_LOADED_QUERY,
    Artifact,
    ServingStack,
    error_rate_query,
)
from modelrollout.devenv.traffic import Traffic
from support.rollouts import Rollouts
from support.waiting import wait_for

ERROR_RATE = {"name": "error-rate", "query": error_rate_query("10s"), "max": 0.05}
DRIFT = {"name": "feature-drift", "query": DRIFT_QUERY, "max": 0.25}
MODEL_LOADED = {"name": "model-loaded", "query": MODEL_LOADED_QUERY, "min": 1}
ACCURACY_VS_STABLE = {
    "name": "accuracy-vs-stable",
    "query": ACCURACY_QUERY,
    "compareTo": "stable",
    "maxDecrease": 0.05,
}
# A regressor's live error may grow by at most this much (in the target's units)
# over the stable version's on the same traffic.
MAE_VS_STABLE = {
    "name": "mae-vs-stable",
    "query": MAE_QUERY,
    "compareTo": "stable",
    "maxIncrease": 20,
}
# Declared in a manifest's template, as a user would: half of the inferences answer 500.
HALF_FAILING = {"MODELSERVER_FAULT_ERROR_RATE": "0.5"}
# Requests per second the tests send; enough for drift windows within seconds,
# light enough for two cores shared with the control plane and the servers.
RATE = 30.0


def model_deployment(
    stack: ServingStack,
    name: str,
    artifact: Artifact,
    *,
    metrics: list[dict[str, Any]],
    strategy: dict[str, Any],
    interval: str = "2s",
    failure_limit: int = 1,
    replicas: int = 2,
) -> dict[str, Any]:
    """Version 1 of `name`, serving `artifact` on real pods, analysed with `metrics`
    against the stack's Prometheus."""
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            **stack.served_spec(artifact, "1", replicas=replicas),
            "service": {"port": 80, "targetPort": "http"},
            "strategy": copy.deepcopy(strategy),
            "analysis": {
                "interval": interval,
                "failureLimit": failure_limit,
                "consecutiveErrorLimit": 100,
                "onNoData": "Pause",
                "prometheus": {"address": stack.prometheus.url},
                "metrics": copy.deepcopy(metrics),
            },
            "rollback": {"automatic": True},
        },
    }


def deploy_first_version(
    rollouts: Rollouts, stack: ServingStack, body: dict[str, Any], **traffic: Any
) -> Traffic:
    """Creates the ModelDeployment, waits until v1 is Healthy and answering
    traffic through its Service's ClusterIP, and returns that traffic."""
    name = body["metadata"]["name"]
    rollouts.create(body)
    rollouts.wait_phase(name, "Healthy", timeout=180)
    sending = stack.traffic(rollouts.namespace, name, **{"rate": RATE, **traffic})
    wait_for(lambda: sending.stats().get("1"), timeout=60, what="v1 answering traffic")
    return sending


def wait_all_traffic_on(rollouts: Rollouts, name: str, revision: str) -> None:
    """Until the main Service's ready endpoints are all on `revision`."""
    wait_for(
        lambda: set(rollouts.endpoint_revisions(name)) == {revision},
        timeout=60,
        what=f"{name}: every ready endpoint on revision {revision}",
    )
