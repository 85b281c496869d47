"""Pods for the local cluster's real node (where every pod goes that does not ask
for a simulated one): the model-server image running a small Python HTTP server
(so no other image is needed), restricted-profile security context, and bounded
HTTP requests to what they serve; and which image runs what."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from kubernetes import client

from modelrollout.devenv import network as net
from modelrollout.devenv.stack import RESTRICTED
from support.kube import ClusterUnderTest
from support.waiting import wait_for


def workload_image(kube: ClusterUnderTest) -> str:
    """The model-server image: model servers and the Python pods below."""
    images = kube.cluster.node_images
    assert images is not None, "the test cluster was started without images"
    return images.workload


def operator_image(kube: ClusterUnderTest) -> str:
    """The operator image (no ML libraries): the Helm chart's operator pod."""
    images = kube.cluster.node_images
    assert images is not None, "the test cluster was started without images"
    return images.operator


def python_pod(
    kube: ClusterUnderTest,
    name: str,
    *,
    labels: dict[str, str] | None = None,
    files: dict[str, str] | None = None,
    ready: bool = True,
    command: list[str] | None = None,
    restart_policy: str = "Always",
) -> dict[str, Any]:
    """A pod of the model-server image on the real node. By default it serves `files`
    from /srv on port 8080; its readiness probe reads /healthy, which is served
    only when `ready`."""
    if command is None:
        files = {**(files or {}), **({"healthy": "yes"} if ready else {})}
        script = (
            "import json, os, sys\n"
            f"files = json.loads({json.dumps(json.dumps(files))})\n"
            "for name, text in files.items():\n"
            "    open(os.path.join('/srv', name), 'w').write(text)\n"
            "server = ['-m', 'http.server', '8080', '--directory', '/srv']\n"
            "os.execvp(sys.executable, [sys.executable, *server])\n"
        )
        command = ["python3", "-c", script]
    container = {
        "name": "main",
        "image": workload_image(kube),
        "imagePullPolicy": "Never",
        "command": command,
        "ports": [{"name": "http", "containerPort": 8080}],
        "volumeMounts": [{"name": "srv", "mountPath": "/srv"}],
        "securityContext": RESTRICTED,
        "readinessProbe": {
            "httpGet": {"path": "/healthy", "port": 8080},
            "periodSeconds": 1,
            "failureThreshold": 1,
        },
    }
    spec = {
        "containers": [container],
        "volumes": [{"name": "srv", "emptyDir": {}}],
        "restartPolicy": restart_policy,
        "terminationGracePeriodSeconds": 1,
        "enableServiceLinks": False,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": spec,
    }


def wait_for_pod_ready(core: client.CoreV1Api, namespace: str, name: str, timeout: float) -> Any:
    def ready() -> Any:
        pod = core.read_namespaced_pod(name, namespace)
        conditions = {c.type: c.status for c in pod.status.conditions or []}
        return pod if conditions.get("Ready") == "True" else None

    return wait_for(ready, timeout=timeout, what=f"pod {namespace}/{name} Ready")


def http_get(url: str, timeout: float = 5.0) -> str:
    """One GET to an address inside the cluster's ranges (routed into the node)."""
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return str(answer.read().decode())


@contextmanager
def reachable_from_pods(kube: ClusterUnderTest, url: str) -> Iterator[str]:
    """`url` of a loopback server, as the cluster's pods reach it."""
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1" and parts.port, url
    network = kube.cluster.network
    address = net.expose_to_pods(network, parts.port)
    try:
        yield parts._replace(netloc=address).geturl()
    finally:
        net.unexpose(network, parts.port)
