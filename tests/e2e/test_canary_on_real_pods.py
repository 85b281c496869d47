"""A canary of real model-server pods, judged by a real Prometheus that finds them
the way a user's would, and promoted.

v1 (the baseline tree) and v2 (the improved pipeline) run as pods of the
model-server image on the cluster's real node, their artifacts downloaded over
HTTP. Prometheus (3.16, built from its Go module with the Kubernetes discovery
that Debian's package leaves out) discovers them with `kubernetes_sd_configs`
(role pod, through the API server) and scrapes their pod IPs. The requests of
`modelrollout loadgen`'s engine and the test's own predictions go to the
Service's ClusterIP, routed by kube-proxy to the ready pods of both revisions by
replica ratio. The operator measures the canary's
error rate and input drift: both pass, and v2 is promoted.
"""

from __future__ import annotations

import ipaddress
import threading

import pytest

from modelrollout.devenv.stack import Artifact, ServingStack
from modelrollout.devenv.traffic import wait_until_routed
from modelserver.loadgen import LoadConfig, Summary, run
from support.clients import Predictions
from support.kube import ClusterUnderTest
from support.rollouts import Rollouts
from support.serving import DRIFT, ERROR_RATE, RATE, model_deployment
from support.waiting import wait_for

pytestmark = pytest.mark.e2e

STEPS = [{"setWeight": 50}, {"pause": {"duration": "4s"}}]
# The load generator's whole run: bounded, longer than the rollout needs.
LOAD_SECONDS = 150.0


def test_a_better_model_on_real_pods_is_promoted_on_metrics_prometheus_scraped_from_pod_ips(
    kube: ClusterUnderTest,
    rollouts: Rollouts,
    models: dict[str, Artifact],
    stack: ServingStack,
) -> None:
    prometheus = stack.prometheus
    rollouts.create(
        model_deployment(
            stack,
            "wine",
            models["baseline"],
            metrics=[ERROR_RATE, DRIFT],
            strategy={"canary": {"steps": STEPS}},
        )
    )
    rollouts.wait_phase("wine", "Healthy", timeout=180)
    cluster_ip = rollouts.core.read_namespaced_service("wine", rollouts.namespace).spec.cluster_ip
    service = f"http://{cluster_ip}"
    wait_until_routed(service)
    load: dict[str, Summary] = {}
    config = LoadConfig(
        urls=(service,), model="wine", rate=RATE, duration=LOAD_SECONDS, progress_interval=3600
    )
    sender = threading.Thread(target=lambda: load.update(summary=run(config)), daemon=True)
    sender.start()
    with Predictions(f"{service}/v2/models/wine/infer") as clients:
        wait_for(lambda: clients.answers.get("version 1"), timeout=60, what="v1 answering")
        rollouts.patch_spec("wine", stack.served_spec(models["improved"], "2"))
        wait_for(lambda: clients.answers.get("version 2"), timeout=120, what="v2 answering at 50%")
        status = rollouts.wait_status(
            "wine",
            "v2 promoted",
            lambda s: s.get("stableVersion") == "2" and s.get("phase") == "Healthy",
            timeout=240,
        )
    sender.join(timeout=LOAD_SECONDS + 30)

    assert status["history"][0]["version"] == "2"
    for metric in ("error-rate", "feature-drift"):
        assert status["analysis"][metric]["failures"] == 0, status["analysis"]
        assert status["analysis"][metric]["successes"] >= 1, status["analysis"]
    # What the clients of the ClusterIP received: both versions answered during the
    # canary, nothing failed.
    assert set(clients.answers) == {"version 1", "version 2"}, clients.answers
    summary = load["summary"]
    assert summary.sent > 0 and set(summary.codes) == {"200"}, summary.codes
    # Prometheus found the pods through the API server and scraped their IPs.
    pod_network = ipaddress.ip_network(kube.cluster.network.node_pod_subnet)
    targets = [t for t in prometheus.active_targets() if t["labels"].get("deployment") == "wine"]
    assert targets, prometheus.active_targets()
    for target in targets:
        host = target["scrapeUrl"].split("//", 1)[1].split(":", 1)[0]
        assert ipaddress.ip_address(host) in pod_network, target["scrapeUrl"]
        assert target["labels"]["namespace"] == rollouts.namespace
        assert target["labels"]["pod"].startswith("wine-")
    versions = {r["metric"]["model_version"] for r in prometheus.query("modelserver_model_info")}
    assert versions >= {"2"}, versions
    print(
        f"\n[figure] real-pod canary: {clients.answers['version 1']} predictions by v1 and "
        f"{clients.answers['version 2']} by v2 through the ClusterIP; load generator "
        f"{summary.sent} requests, all 200, at {summary.achieved_rate:.1f} req/s; "
        f"last feature-drift {status['analysis']['feature-drift'].get('value')} (max 0.25)"
    )
