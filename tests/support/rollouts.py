"""Reading a ModelDeployment's world in tests: its status, the replicas of each
revision, what each Service selects and the pods behind it."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from modelrollout.api import names as n
from modelrollout.devenv.cluster import on_simulated_nodes
from modelrollout.devenv.tools import REPO_ROOT
from support.kube import ClusterUnderTest
from support.waiting import wait_for

EXAMPLES = REPO_ROOT / "examples"
MODELROLLOUT = Path(sys.executable).parent / "modelrollout"
# Scheduling, KWOK's simulated start and a reconcile, on a loaded 2-core machine.
SETTLE_SECONDS = 90.0


def example(name: str) -> dict[str, Any]:
    """The first ModelDeployment in examples/<name>.yaml, its pods placed on the
    cluster's simulated nodes.

    The examples' image (ghcr.io/acme/modelrollout) exists nowhere here, and the
    tests that start from an example judge the operator's own work (the objects
    it makes, their selectors and sizes, status, events, commands): KWOK's pods,
    Ready without a container, are all that needs. What real containers do is
    the e2e tier's, on the real node (support/serving.py)."""
    for document in yaml.safe_load_all((EXAMPLES / f"{name}.yaml").read_text()):
        if document and document.get("kind") == n.KIND:
            body = dict(document)
            template = body["spec"]["template"]
            template["spec"] = on_simulated_nodes(template["spec"])
            return body
    raise AssertionError(f"no {n.KIND} in examples/{name}.yaml")


def plain_canary(name: str, steps: list[dict[str, Any]], replicas: int = 4) -> dict[str, Any]:
    """examples/canary.yaml at version 1 with `steps`, without its Prometheus
    analysis (the operator's own work, with nothing to measure)."""
    body = example("canary")
    body["metadata"]["name"] = name
    spec = body["spec"]
    spec.pop("analysis")
    spec["replicas"] = replicas
    spec["strategy"]["canary"]["steps"] = steps
    spec["model"]["version"] = "1"
    return body


class Rollouts:
    def __init__(self, kube: ClusterUnderTest, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(kube.api)
        self.apps = client.AppsV1Api(kube.api)
        self.core = client.CoreV1Api(kube.api)

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(body)
        body["metadata"]["namespace"] = self.namespace
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            n.GROUP, n.VERSION, self.namespace, n.PLURAL, body
        )
        return created

    def get(self, name: str) -> dict[str, Any]:
        body: dict[str, Any] = self.custom.get_namespaced_custom_object(
            n.GROUP, n.VERSION, self.namespace, n.PLURAL, name
        )
        return body

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def patch_spec(self, name: str, spec_patch: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            n.GROUP, n.VERSION, self.namespace, n.PLURAL, name, {"spec": spec_patch}
        )

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(
            n.GROUP, n.VERSION, self.namespace, n.PLURAL, name
        )

    def wait_status(
        self, name: str, what: str, predicate: Any, timeout: float = SETTLE_SECONDS
    ) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            status = self.status(name)
            return status if predicate(status) else None

        return wait_for(probe, timeout=timeout, what=f"{name}: {what}")

    def wait_phase(self, name: str, phase: str, timeout: float = SETTLE_SECONDS) -> dict[str, Any]:
        return self.wait_status(
            name, f"phase {phase}", lambda s: s.get("phase") == phase, timeout=timeout
        )

    def replicas(self, name: str) -> dict[str, tuple[int, int]]:
        """revision -> (spec.replicas, ready replicas) of each Deployment it owns."""
        deployments = self.apps.list_namespaced_deployment(
            self.namespace, label_selector=f"{n.LABEL_DEPLOYMENT}={name}"
        ).items
        return {
            d.metadata.labels[n.LABEL_REVISION]: (d.spec.replicas, d.status.ready_replicas or 0)
            for d in deployments
        }

    def selector(self, service: str) -> dict[str, str]:
        return dict(self.core.read_namespaced_service(service, self.namespace).spec.selector)

    def endpoint_revisions(self, service: str) -> dict[str, int]:
        """revision -> number of ready endpoints the Service has on it."""
        slices = (
            client.DiscoveryV1Api(self.kube.api)
            .list_namespaced_endpoint_slice(
                self.namespace, label_selector=f"kubernetes.io/service-name={service}"
            )
            .items
        )
        pods = {
            p.metadata.name: p.metadata.labels.get(n.LABEL_REVISION)
            for p in self.core.list_namespaced_pod(self.namespace).items
        }
        counts: dict[str, int] = {}
        for endpoint_slice in slices:
            for endpoint in endpoint_slice.endpoints or []:
                ready = endpoint.conditions and endpoint.conditions.ready
                target = endpoint.target_ref.name if endpoint.target_ref else None
                if ready and target in pods:
                    revision = pods[target]
                    counts[revision] = counts.get(revision, 0) + 1
        return counts

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`modelrollout ARGS -n NAMESPACE`, as a user runs it."""
        result = self.cli_as(self.kube.kubeconfig, *args)
        if check and result.returncode != 0:
            raise AssertionError(
                f"modelrollout {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def cli_as(self, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """The plugin with another account's kubeconfig; never raises on its exit code."""
        return subprocess.run(
            [str(MODELROLLOUT), *args, "-n", self.namespace, "--kubeconfig", str(kubeconfig)],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
