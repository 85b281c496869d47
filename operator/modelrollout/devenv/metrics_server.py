"""metrics-server for the local cluster: the resource metrics API an HPA reads CPU from.

Built from its Go module (tools/cluster/metrics-server) and run on the host, as the
control plane is. The API server reaches it through the aggregation layer: an
APIService `v1beta1.metrics.k8s.io` backed by a Service without selector whose
EndpointSlice names the host end of the node's veth (the API server routes to the
endpoint itself, --enable-aggregator-routing). It scrapes only the real node's
kubelet (/metrics/resource, the cluster's admin credentials, the kubelet's
self-signed serving certificate not verified): KWOK's simulated nodes have no
kubelet, and their addresses lead nowhere.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelrollout.devenv.ports import free_port
from modelrollout.devenv.processes import stop_child

if TYPE_CHECKING:
    from modelrollout.devenv.cluster import LocalCluster

NAMESPACE = "kube-system"
SERVICE = "metrics-server"
API_SERVICE = "v1beta1.metrics.k8s.io"
# Its first scrape of the kubelet comes one resolution after start.
RESOLUTION = "10s"
READY_TIMEOUT_SECONDS = 120.0


class MetricsServerError(RuntimeError):
    """metrics-server did not start, or the API server cannot reach it."""


@dataclass
class LocalMetricsServer:
    cluster: LocalCluster
    process: subprocess.Popen[bytes]
    log_path: Path
    _stopped: bool = field(default=False, repr=False)

    def pod_cpu(self, namespace: str) -> dict[str, float]:
        """Pod name -> CPU cores, as an HPA reads them (empty before the first scrape)."""
        raw = self.cluster.kubectl(
            "get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods",
            check=False,
        )  # fmt: skip
        if raw.returncode != 0:
            return {}
        return {
            item["metadata"]["name"]: sum(_cores(c["usage"]["cpu"]) for c in item["containers"])
            for item in json.loads(raw.stdout).get("items", [])
        }

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.cluster.kubectl("delete", "apiservice", API_SERVICE, "--ignore-not-found", check=False)
        stop_child(self.process, grace_seconds=15)


def _cores(quantity: str) -> float:
    """A CPU quantity as metrics-server writes it ("12345678n", "15m", "1")."""
    units = {"n": 1e-9, "u": 1e-6, "m": 1e-3}
    if quantity and quantity[-1] in units:
        return float(quantity[:-1]) * units[quantity[-1]]
    return float(quantity)


def registration(address: str, port: int) -> list[dict[str, Any]]:
    """The Service, EndpointSlice and APIService that route metrics.k8s.io to it."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": SERVICE, "namespace": NAMESPACE},
            "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]},
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": SERVICE,
                "namespace": NAMESPACE,
                "labels": {"kubernetes.io/service-name": SERVICE},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        },
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": API_SERVICE},
            "spec": {
                "service": {"name": SERVICE, "namespace": NAMESPACE, "port": 443},
                "group": "metrics.k8s.io",
                "version": "v1beta1",
                # Its serving certificate is self-signed (--cert-dir), made at start.
                "insecureSkipTLSVerify": True,
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
            },
        },
    ]


def start_metrics_server(cluster: LocalCluster, workdir: Path) -> LocalMetricsServer:
    """Starts it for `cluster`, registers it, and waits until the API serves the
    real node's metrics."""
    workdir.mkdir(parents=True, exist_ok=True)
    address, port = cluster.network.host_address, free_port()
    kubeconfig = str(cluster.kubeconfig)
    log_path = workdir / "metrics-server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(cluster.tools.path("metrics-server")),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                f"--bind-address={address}",
                f"--secure-port={port}",
                f"--cert-dir={workdir / 'certs'}",
                "--kubelet-insecure-tls",
                "--kubelet-preferred-address-types=InternalIP",
                "--kubelet-use-node-status-port",
                f"--node-selector=kubernetes.io/hostname={cluster.node.name}",
                f"--metric-resolution={RESOLUTION}",
                # Below the resolution, as it must be.
                "--kubelet-request-timeout=5s",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LocalMetricsServer(cluster=cluster, process=process, log_path=log_path)
    try:
        cluster.kubectl(
            "apply", "-f", "-", stdin=json.dumps({"kind": "List", "apiVersion": "v1",
                                                 "items": registration(address, port)}),
        )  # fmt: skip
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not _serves_the_node(cluster):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise MetricsServerError(
                    f"metrics-server did not serve {cluster.node.name}'s metrics within "
                    f"{READY_TIMEOUT_SECONDS:.0f} s (exit {process.poll()}):\n{tail}"
                )
            time.sleep(1.0)
    except BaseException:
        server.stop()
        raise
    return server


def _serves_the_node(cluster: LocalCluster) -> bool:
    result = cluster.kubectl(
        "get", "--raw", f"/apis/metrics.k8s.io/v1beta1/nodes/{cluster.node.name}", check=False
    )
    return result.returncode == 0 and '"usage"' in result.stdout
