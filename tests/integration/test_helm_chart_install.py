"""The Helm chart installed for real on the local cluster: **the chart's operator
pod** (the operator image, built by `make images`, on the cluster's real node,
with in-cluster credentials through the `kubernetes` Service and the chart's own
ServiceAccount) runs a canary that is promoted and one that is rolled back, so
the chart's RBAC is proven sufficient; a TokenRequest token of the same
ServiceAccount is then refused what the chart does not grant. Namespaced and
cluster-wide.

The release namespace enforces the `restricted` Pod Security Standard, so the
operator pod is admitted only because its securityContext is hardened. The
tests' Prometheus and webhook receiver listen on loopback; the pod reaches them
through the node's forwarding of just those ports (`network.expose_to_pods`).
"""

from __future__ import annotations

import base64
import re
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from modelrollout.api import names as n
from support.chart import installed, operator_pod, token_kubeconfig
from support.exporter import QUALITY, MetricsLab, metrics_lab
from support.hooks import Hook, running_hook
from support.kube import ClusterUnderTest, fresh_namespace
from support.realnode import reachable_from_pods
from support.rollouts import Rollouts, example, plain_canary
from support.scrape import sample
from support.waiting import wait_for

QUERY = f'max({QUALITY}{{model_version="{{{{ version }}}}"}})'
HTTP_FORBIDDEN = re.compile(r"\(403\)|\b403 Forbidden|Forbidden")
RBAC_DENIAL = re.compile(r"cannot \S+ resource")


def analysed(prometheus_url: str) -> dict[str, Any]:
    body = example("canary")
    spec = body["spec"]
    spec["replicas"] = 2
    spec["model"]["version"] = "1"
    spec["strategy"]["canary"]["steps"] = [{"setWeight": 50}, {"pause": {"duration": "2s"}}]
    spec["analysis"] = {
        "interval": "2s",
        "failureLimit": 1,
        "consecutiveErrorLimit": 100,
        "onNoData": "Pause",
        "prometheus": {"address": prometheus_url},
        "metrics": [{"name": "quality", "query": QUERY, "min": 0.8}],
    }
    spec["notifications"] = {"webhook": {"urlSecretRef": {"name": "notify", "key": "url"}}}
    return body


def secret(name: str, **data: str) -> client.V1Secret:
    return client.V1Secret(
        metadata=client.V1ObjectMeta(name=name),
        data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    )


def forbidden(call: Any, *args: Any, **kwargs: Any) -> bool:
    try:
        call(*args, **kwargs)
    except ApiException as error:
        return error.status == 403
    return False


def canary_then_rollback(
    rollouts: Rollouts, lab: MetricsLab, prometheus_url: str, hook: Hook
) -> dict[str, float]:
    """Version 2 passes analysis and is promoted; version 3 fails and is rolled
    back, with a notification whose URL comes from a Secret. Returns timings."""
    lab.set_quality("1", 0.95)
    lab.set_quality("2", 0.95)
    lab.set_quality("3", 0.3)
    lab.wait_scraped("3", 0.3)
    body = analysed(prometheus_url)
    name = body["metadata"]["name"]
    started = time.monotonic()
    rollouts.create(body)
    rollouts.wait_phase(name, "Healthy")
    deployed = time.monotonic() - started
    rollouts.patch_spec(name, {"model": {"version": "2"}})
    rollouts.wait_status(
        name, "version 2 promoted", lambda s: s.get("stableVersion") == "2", timeout=120
    )
    promoted = time.monotonic() - started - deployed
    rollouts.wait_phase(name, "Healthy")
    rollouts.patch_spec(name, {"model": {"version": "3"}})
    status = rollouts.wait_phase(name, "Degraded", timeout=120)
    assert status["reason"] == "RolledBack" and status["stableVersion"] == "2"
    assert status["lastRollback"]["metric"] == "quality"
    wait_for(
        lambda: [b for b in hook.bodies() if b.get("reason") == "RolledBack"],
        timeout=30,
        what="the rollback notification (its URL is in a Secret)",
    )
    return {"deploy": deployed, "canary": promoted}


@pytest.mark.integration
def test_namespaced_install_runs_a_canary_and_a_rollback_with_the_charts_serviceaccount(
    crds: ClusterUnderTest, namespace: str, tmp_path: Path
) -> None:
    kube = crds
    core = client.CoreV1Api(kube.api)
    with (
        ExitStack() as stack,
        fresh_namespace(kube, prefix="other") as other,
        running_hook() as hook,
        metrics_lab(tmp_path / "prometheus") as lab,
        installed(
            kube,
            "--set",
            f"watchNamespaces={{{namespace}}}",
            "--set",
            "rbac.secrets.resourceNames={notify}",
        ) as release,
    ):
        hook_url = stack.enter_context(reachable_from_pods(kube, hook.url))
        prometheus_url = stack.enter_context(reachable_from_pods(kube, lab.url))
        core.create_namespaced_secret(namespace, secret("notify", url=hook_url))
        core.create_namespaced_secret(namespace, secret("unrelated", password="s3cret"))
        core.create_namespaced_secret(other, secret("notify", url=hook_url))
        kubeconfig = token_kubeconfig(kube, release, tmp_path / "sa.yaml")
        rollouts = Rollouts(kube, namespace)
        operator = operator_pod(kube, release)
        with operator.log_shown_on_failure():
            timings = canary_then_rollback(rollouts, lab, prometheus_url, hook)
            text = wait_for(
                lambda: (
                    (m := operator.metrics())
                    and "modelrollout_rollouts_rolled_back_total{" in m
                    and m
                ),
                timeout=30,
                what="the rollback in /metrics",
            )
        log = operator.log()
        # Any refusal at all: an HTTP 403 as the Kubernetes client or Kopf reports it
        # (not the digits, which a log line's milliseconds can hold).
        refusals = [
            line
            for line in log.splitlines()
            if RBAC_DENIAL.search(line) or HTTP_FORBIDDEN.search(line)
        ]
        assert not refusals, refusals
        md = {"namespace": namespace, "name": "fraud"}
        assert sample(text, "modelrollout_rollouts_started_total", **md) == 2
        assert sample(text, "modelrollout_rollouts_completed_total", **md) == 1
        rolled_back = {**md, "reason": "RolledBack", "metric": "quality"}
        assert sample(text, "modelrollout_rollouts_rolled_back_total", **rolled_back) == 1
        # What ModelRolloutRolledBack reads: when, from status.lastRollback.at.
        at = sample(text, "modelrollout_last_rollback_timestamp_seconds", **rolled_back)
        assert 0 < time.time() - at < 600
        failed = {**md, "metric": "quality", "result": "fail"}
        assert sample(text, "modelrollout_analysis_measurements_total", **failed) >= 2
        passed = {**md, "metric": "quality", "result": "pass"}
        assert sample(text, "modelrollout_analysis_measurements_total", **passed) >= 1
        assert sample(text, "modelrollout_phase", **md, phase="Degraded") == 1

        # Not broader than needed: the same token is refused everything else.
        sa = config.new_client_from_config(config_file=str(kubeconfig))
        try:
            sa_core, sa_apps = client.CoreV1Api(sa), client.AppsV1Api(sa)
            sa_custom = client.CustomObjectsApi(sa)
            assert sa_core.read_namespaced_secret("notify", namespace).data
            refused = {
                "get a Secret it was not granted": forbidden(
                    sa_core.read_namespaced_secret, "unrelated", namespace
                ),
                "list Secrets": forbidden(sa_core.list_namespaced_secret, namespace),
                "get a Secret in another namespace": forbidden(
                    sa_core.read_namespaced_secret, "notify", other
                ),
                "list Deployments in another namespace": forbidden(
                    sa_apps.list_namespaced_deployment, other
                ),
                "create a Service in another namespace": forbidden(
                    sa_core.create_namespaced_service,
                    other,
                    {"metadata": {"name": "x"}, "spec": {"ports": [{"port": 80}]}},
                ),
                "list ModelDeployments in another namespace": forbidden(
                    sa_custom.list_namespaced_custom_object, n.GROUP, n.VERSION, other, n.PLURAL
                ),
                "delete a ModelDeployment": forbidden(
                    sa_custom.delete_namespaced_custom_object,
                    n.GROUP,
                    n.VERSION,
                    namespace,
                    n.PLURAL,
                    "fraud",
                ),
                "list Pods in another namespace": forbidden(sa_core.list_namespaced_pod, other),
                "read a Pod's log": forbidden(sa_core.read_namespaced_pod_log, "any", namespace),
                "list Nodes": forbidden(sa_core.list_node),
                "patch a Deployment's pod template": forbidden(
                    sa_apps.patch_namespaced_deployment,
                    f"fraud-{rollouts.status('fraud')['stableRevision']}",
                    namespace,
                    {"spec": {"template": {"metadata": {"labels": {"x": "y"}}}}},
                ),
                "list cluster-wide peering": forbidden(
                    sa_custom.list_cluster_custom_object, "kopf.dev", "v1", "clusterkopfpeerings"
                ),
            }
        finally:
            sa.close()
        assert all(refused.values()), [what for what, ok in refused.items() if not ok]
    print(
        f"\n[figure] with the chart's ServiceAccount: deployed in {timings['deploy']:.1f} s, "
        f"canary promoted in {timings['canary']:.1f} s"
    )


@pytest.mark.integration
def test_cluster_wide_install_rolls_out_with_the_charts_serviceaccount(
    crds: ClusterUnderTest, namespace: str, tmp_path: Path
) -> None:
    kube = crds
    with installed(kube) as release:
        kubeconfig = token_kubeconfig(kube, release, tmp_path / "sa.yaml")
        rollouts = Rollouts(kube, namespace)
        body = plain_canary("fraud", [{"setWeight": 50}], replicas=2)
        operator = operator_pod(kube, release)
        with operator.log_shown_on_failure():
            rollouts.create(body)
            rollouts.wait_phase("fraud", "Healthy")
            rollouts.patch_spec("fraud", {"model": {"version": "8"}})
            rollouts.wait_status(
                "fraud", "version 8 promoted", lambda s: s.get("stableVersion") == "8"
            )
            rollouts.delete("fraud")  # Kopf's finalizer is removed by the operator itself
            wait_for(
                lambda: (
                    not rollouts.custom.list_namespaced_custom_object(
                        n.GROUP, n.VERSION, namespace, n.PLURAL
                    )["items"]
                ),
                timeout=60,
                what="the ModelDeployment gone",
            )
        log = operator.log()
        # Cluster-wide, the operator also sees other tests' namespaces being
        # deleted, whose refusals are 403s too; a missing grant reads
        # `User "system:serviceaccount:..." cannot <verb> resource ...`.
        denials = [line for line in log.splitlines() if RBAC_DENIAL.search(line)]
        assert not denials, denials
        sa = config.new_client_from_config(config_file=str(kubeconfig))
        try:
            sa_core, sa_apps = client.CoreV1Api(sa), client.AppsV1Api(sa)
            refused = {
                "list Secrets": forbidden(sa_core.list_secret_for_all_namespaces),
                "list Namespaces (not needed cluster-wide)": forbidden(sa_core.list_namespace),
                "create a Pod": forbidden(
                    sa_core.create_namespaced_pod,
                    namespace,
                    {
                        "metadata": {"name": "x"},
                        "spec": {"containers": [{"name": "x", "image": "x"}]},
                    },
                ),
                "delete a Namespace": forbidden(sa_core.delete_namespace, namespace),
                "update a Deployment": forbidden(
                    sa_apps.patch_namespaced_deployment, "x", namespace, {"spec": {}}
                ),
                "write a ClusterRole": forbidden(
                    client.RbacAuthorizationV1Api(sa).create_cluster_role,
                    {"metadata": {"name": "escalate"}, "rules": []},
                ),
            }
        finally:
            sa.close()
        assert all(refused.values()), [what for what, ok in refused.items() if not ok]
