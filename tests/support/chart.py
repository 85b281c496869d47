"""The Helm chart under test (charts/modelrollout): rendering it, installing it
as the operator's pod on the local cluster, and the promtool helpers its alert,
dashboard and example-query tests share.

`installed()` puts the release in a fresh namespace that enforces the
`restricted` Pod Security Standard, so the operator pod is admitted only because
its securityContext is hardened; the pod runs the project's image, built by
`make images`, on the cluster's real node, with in-cluster credentials through
the `kubernetes` Service and the chart's own ServiceAccount.
"""

from __future__ import annotations

import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from modelrollout.devenv.tools import REPO_ROOT, ensure_tools
from support.kube import ClusterUnderTest, fresh_namespace
from support.realnode import operator_image

CHART = REPO_ROOT / "charts" / "modelrollout"


def helm(kube: ClusterUnderTest, *args: str) -> str:
    result = subprocess.run(
        [str(ensure_tools().helm), *args, "--kubeconfig", str(kube.kubeconfig)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def render(*values: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(ensure_tools().helm), "template", "r", str(CHART), "-n", "mr-system",
         "--include-crds", *values],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    service_account: str


def operator_pod_values(kube: ClusterUnderTest) -> list[str]:
    """The locally built operator image (imported into the node, never pulled), one replica;
    the chart's defaults place it, as a user's would be (only the real node takes
    pods that do not ask for the simulated ones)."""
    repository, tag = operator_image(kube).rsplit(":", 1)
    return [
        "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
        "--set", "image.pullPolicy=Never", "--set", "replicaCount=1",
    ]  # fmt: skip


@contextmanager
def installed(kube: ClusterUnderTest, *values: str) -> Iterator[Release]:
    """The chart installed in a fresh namespace that enforces the `restricted`
    Pod Security Standard, its operator pod Ready (`helm --wait`); uninstalled
    afterwards (its ClusterRoles too)."""
    with fresh_namespace(kube, prefix="mr") as release_namespace:
        client.CoreV1Api(kube.api).patch_namespace(
            release_namespace,
            {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
        )
        name = f"r{uuid.uuid4().hex[:6]}"
        helm(kube, "install", name, str(CHART), "-n", release_namespace, "--wait",
             "--timeout", "180s", *operator_pod_values(kube), *values)  # fmt: skip
        try:
            yield Release(name, release_namespace, f"{name}-modelrollout")
        finally:
            helm(kube, "uninstall", name, "-n", release_namespace, "--wait")


def token_kubeconfig(kube: ClusterUnderTest, release: Release, path: Path) -> Path:
    """A kubeconfig holding a TokenRequest token of the release's ServiceAccount:
    the identity the operator's pod has."""
    token = (
        client.CoreV1Api(kube.api)
        .create_namespaced_service_account_token(
            release.service_account,
            release.namespace,
            client.AuthenticationV1TokenRequest(spec={"expirationSeconds": 3600}),
        )
        .status.token
    )
    admin = yaml.safe_load(kube.kubeconfig.read_text())
    cluster = admin["clusters"][0]
    user = f"system:serviceaccount:{release.namespace}:{release.service_account}"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": user, "user": {"token": token}}],
                "contexts": [{"name": "sa", "context": {"cluster": cluster["name"], "user": user}}],
                "current-context": "sa",
            }
        )
    )
    return path


@dataclass
class OperatorPod:
    """The chart's operator, running as the release's one pod."""

    kube: ClusterUnderTest
    release: Release
    name: str
    ip: str
    metrics_port: int = 8080

    def log(self) -> str:
        core = client.CoreV1Api(self.kube.api)
        return str(core.read_namespaced_pod_log(self.name, self.release.namespace))

    @contextmanager
    def log_shown_on_failure(self) -> Iterator[None]:
        """The end of the pod's log printed when the block fails, for the report."""
        try:
            yield
        except BaseException:
            print(f"--- operator log ---\n{self.log()[-20000:]}")
            raise

    def metrics(self) -> str:
        url = f"http://{self.ip}:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            return str(response.read().decode())


def operator_pod(kube: ClusterUnderTest, release: Release) -> OperatorPod:
    pods = (
        client.CoreV1Api(kube.api)
        .list_namespaced_pod(
            release.namespace, label_selector=f"app.kubernetes.io/instance={release.name}"
        )
        .items
    )
    assert len(pods) == 1, [p.metadata.name for p in pods]
    pod = pods[0]
    assert pod.spec.node_name == kube.cluster.node.name, "the operator runs on the real node"
    assert pod.spec.service_account_name == release.service_account
    return OperatorPod(kube, release, pod.metadata.name, pod.status.pod_ip)


def dashboard_query(expr: str) -> str:
    """A panel's PromQL with Grafana's variables given plausible values."""
    return expr.replace("$__range", "1h").replace("$namespace", ".*")


def series(metric: str, values: str, /, **labels: str) -> dict[str, str]:
    selector = ", ".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{metric}{{{selector}}}", "values": values}
