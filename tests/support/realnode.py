"""Pods for the local cluster's real node: the project's image running a small
Python HTTP server (so no other image is needed), restricted-profile security
context, and bounded HTTP requests to what they serve."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kubernetes import client

from modelrollout.devenv import network as net
from modelrollout.devenv.node import REAL_NODE_LABEL, REAL_NODE_TAINT_KEY
from modelrollout.devenv.stack import FAST_SERVER_ENV, Artifact
from support.kube import ClusterUnderTest
from support.store import running_store
from support.waiting import wait_for

# What Pod Security Admission's `restricted` profile asks of every container.
RESTRICTED: dict[str, Any] = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def on_real_node(pod_spec: dict[str, Any]) -> dict[str, Any]:
    """`pod_spec` (a PodSpec as a dict) placed on the real node: it tolerates the
    real node's taint and selects its label."""
    spec = dict(pod_spec)
    spec["tolerations"] = [
        *spec.get("tolerations", []),
        {"key": REAL_NODE_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"},
    ]
    spec["nodeSelector"] = {**spec.get("nodeSelector", {}), REAL_NODE_LABEL: "real"}
    return spec


def model_server_template(kube: ClusterUnderTest, artifact: Artifact) -> dict[str, Any]:
    """The pod template of real model servers (`args: [serve]`) on the real node:
    read-only root, the artifact downloaded into an emptyDir, readiness on the
    server's own ready endpoint gating the Service's endpoints."""
    env = {**FAST_SERVER_ENV, **artifact.server_env(), "MODELSERVER_ARTIFACT_DIR": "/models"}
    container = {
        "name": "server",
        "image": workload_image(kube),
        "imagePullPolicy": "Never",
        "args": ["serve"],
        "ports": [{"name": "http", "containerPort": 8080}],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        # Every second, but a slow answer is not a failure: on 2 busy cores (a
        # crash-looping canary reloading scikit-learn beside it) a healthy server
        # can take over the default 1 s to answer.
        "readinessProbe": {
            "httpGet": {"path": "/v2/health/ready", "port": "http"},
            "periodSeconds": 1,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "securityContext": {**RESTRICTED, "readOnlyRootFilesystem": True},
        "volumeMounts": [{"name": "models", "mountPath": "/models"}],
    }
    pod_spec = on_real_node(
        {
            "containers": [container],
            "volumes": [{"name": "models", "emptyDir": {}}],
            "terminationGracePeriodSeconds": 15,
        }
    )
    return {"spec": pod_spec}


@contextmanager
def artifact_store(
    kube: ClusterUnderTest, artifacts: dict[str, Artifact]
) -> Iterator[dict[str, str]]:
    """The trained artifacts (and their profiles) served over HTTP from loopback,
    forwarded to the pods; yields variant -> the URL pods download it from."""
    with running_store() as store, reachable_from_pods(kube, store.url) as url:
        uris = {}
        for variant, artifact in artifacts.items():
            local = Path(urlsplit(artifact.uri).path)
            store.put_file(f"/{local.name}", local)
            store.put_file(f"/{local.name}.profile.json", f"{local}.profile.json")
            uris[variant] = f"{url}/{local.name}"
        yield uris


def workload_image(kube: ClusterUnderTest) -> str:
    images = kube.cluster.node_images
    assert images is not None, "the test cluster was started without images"
    return images.workload


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
    """A pod of the project's image on the real node. By default it serves `files`
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
    spec = on_real_node(
        {
            "containers": [container],
            "volumes": [{"name": "srv", "emptyDir": {}}],
            "restartPolicy": restart_policy,
            "terminationGracePeriodSeconds": 1,
            "enableServiceLinks": False,
        }
    )
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
