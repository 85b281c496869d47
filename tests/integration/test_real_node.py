"""The local cluster's real node runs real containers: kubelet registers it with
containerd as its runtime, pods get addresses that answer, kube-proxy routes a
Service's ClusterIP to the ready pods only, a crashing container is restarted,
and `kubectl logs`, `exec` and `port-forward` reach the pods."""

from __future__ import annotations

import ipaddress
import subprocess
import urllib.request
from collections import Counter
from typing import Any

import pytest
from kubernetes import client

from modelrollout.devenv import network as net
from modelrollout.devenv.ports import free_port
from support.kube import ClusterUnderTest
from support.realnode import http_get, python_pod, wait_for_pod_ready
from support.waiting import wait_for

pytestmark = pytest.mark.integration

# Real containers start in seconds; a busy 2-core machine gets a minute.
START_SECONDS = 60.0


def test_the_real_node_is_ready_with_containerd_as_its_runtime(kube: ClusterUnderTest) -> None:
    node = client.CoreV1Api(kube.api).read_node(kube.cluster.node.name)
    ready = {c.type: c.status for c in node.status.conditions}["Ready"]
    assert ready == "True"
    assert node.status.node_info.container_runtime_version.startswith("containerd://")
    assert node.status.node_info.kubelet_version == kube.cluster.kubernetes_version
    addresses = {a.type: a.address for a in node.status.addresses}
    assert addresses["InternalIP"] == kube.cluster.network.node_address


def test_a_pod_on_the_real_node_answers_on_its_ip(kube: ClusterUnderTest, namespace: str) -> None:
    core = client.CoreV1Api(kube.api)
    core.create_namespaced_pod(namespace, python_pod(kube, "web", files={"whoami": "web"}))
    pod = wait_for_pod_ready(core, namespace, "web", START_SECONDS)
    assert pod.spec.node_name == kube.cluster.node.name
    assert pod.status.pod_ip in _subnet_hosts(kube.cluster.network.node_pod_subnet)
    assert http_get(f"http://{pod.status.pod_ip}:8080/whoami") == "web"


def _subnet_hosts(subnet: str) -> set[str]:
    return {str(a) for a in ipaddress.ip_network(subnet).hosts()}


def test_a_service_routes_only_to_ready_pods(kube: ClusterUnderTest, namespace: str) -> None:
    core = client.CoreV1Api(kube.api)
    # Both pods match the Service; only "ready" serves the file its probe reads.
    core.create_namespaced_pod(
        namespace, python_pod(kube, "ready", labels={"app": "web"}, files={"whoami": "ready"})
    )
    unready_pod = python_pod(
        kube, "unready", labels={"app": "web"}, files={"whoami": "unready"}, ready=False
    )
    core.create_namespaced_pod(namespace, unready_pod)
    core.create_namespaced_service(
        namespace,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="web"),
            spec=client.V1ServiceSpec(
                selector={"app": "web"},
                ports=[client.V1ServicePort(port=80, target_port=8080)],
            ),
        ),
    )
    wait_for_pod_ready(core, namespace, "ready", START_SECONDS)

    def running() -> Any:
        # Its container may start after the other pod is Ready: wait for it, bounded.
        pod = core.read_namespaced_pod("unready", namespace)
        return pod if pod.status.phase == "Running" else None

    unready = wait_for(running, timeout=START_SECONDS, what="the unready pod Running")
    conditions = {c.type: c.status for c in unready.status.conditions or []}
    assert conditions.get("Ready") != "True", "the unready pod runs; only its probe fails"
    cluster_ip = core.read_namespaced_service("web", namespace).spec.cluster_ip
    assert cluster_ip in _subnet_hosts(kube.cluster.network.service_cidr)
    # kube-proxy programs the ClusterIP shortly after the endpoint turns ready.
    wait_for(lambda: _answers(f"http://{cluster_ip}/whoami"), timeout=30, what="the ClusterIP")
    answers = Counter(http_get(f"http://{cluster_ip}/whoami") for _ in range(30))
    assert answers == Counter({"ready": 30})


def _answers(url: str) -> bool:
    try:
        http_get(url, timeout=2)
    except OSError:
        return False
    return True


def test_a_crashing_container_is_restarted_and_says_why(
    kube: ClusterUnderTest, namespace: str
) -> None:
    core = client.CoreV1Api(kube.api)
    pod = python_pod(kube, "crash", command=["python3", "-c", "import sys; sys.exit(3)"])
    core.create_namespaced_pod(namespace, pod)

    def crash_looping() -> Any:
        status = core.read_namespaced_pod("crash", namespace).status
        for container in status.container_statuses or []:
            if container.restart_count >= 2 and container.last_state.terminated:
                return container
        return None

    container = wait_for(crash_looping, timeout=120, what="the container restarted twice")
    assert container.last_state.terminated.exit_code == 3
    assert not container.ready


def test_kubectl_logs_exec_and_port_forward_reach_a_real_pod(
    kube: ClusterUnderTest, namespace: str
) -> None:
    core = client.CoreV1Api(kube.api)
    core.create_namespaced_pod(namespace, python_pod(kube, "web", files={"whoami": "web"}))
    wait_for_pod_ready(core, namespace, "web", START_SECONDS)

    pod_ip = core.read_namespaced_pod("web", namespace).status.pod_ip
    assert http_get(f"http://{pod_ip}:8080/whoami") == "web"
    logs = kube.kubectl("logs", "-n", namespace, "web")
    assert "GET /whoami" in logs, logs
    assert kube.kubectl("exec", "-n", namespace, "web", "--", "cat", "/srv/whoami") == "web"

    port = free_port()
    forward = subprocess.Popen(
        [str(kube.cluster.tools.kubectl), "--kubeconfig", str(kube.kubeconfig),
         "port-forward", "-n", namespace, "pod/web", f"{port}:8080", "--address", "127.0.0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert forward.stdout is not None
        line = forward.stdout.readline()
        assert f"127.0.0.1:{port}" in line, line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/whoami", timeout=10) as answer:
            assert answer.read().decode() == "web"
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def test_cluster_ranges_never_route_through_the_default_gateway(kube: ClusterUnderTest) -> None:
    network = kube.cluster.network
    default = net.run(["ip", "-o", "route", "show", "default"]).stdout.split()
    default_device = default[default.index("dev") + 1] if "dev" in default else ""
    for cidr in network.routed_ranges:
        for address in (_first_host(cidr), _last_host(cidr)):
            device = net.route_device(address)
            assert device == network.host_link, f"{address} goes via {device!r}"
            assert device != default_device
    # Inside the node, an address nothing serves is refused, not sent on.
    unprogrammed = _last_host(network.service_cidr)
    inside = subprocess.run(
        net.in_netns(network.netns, ["ip", "route", "get", unprogrammed]),
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert inside.returncode != 0 and "unreachable" in inside.stderr.lower(), inside
    # KWOK's simulated pods and nodes have addresses inside the routed ranges too.
    assert net.route_device(network.fake_node_ip) == network.host_link
    assert net.route_device(network.fake_pod_cidr.split("/")[0]) == network.host_link


def _first_host(cidr: str) -> str:
    return str(next(ipaddress.ip_network(cidr).hosts()))


def _last_host(cidr: str) -> str:
    network = ipaddress.ip_network(cidr)
    return str(network.broadcast_address - 1)


def test_pods_reach_the_api_server_through_the_kubernetes_service(
    kube: ClusterUnderTest, namespace: str
) -> None:
    core = client.CoreV1Api(kube.api)
    # The pod's own ServiceAccount token, against the Service address pods get.
    script = "\n".join(
        [
            "import json, os, ssl, urllib.request",
            "sa = '/var/run/secrets/kubernetes.io/serviceaccount'",
            "env = os.environ",
            "url = f\"https://{env['KUBERNETES_SERVICE_HOST']}:{env['KUBERNETES_SERVICE_PORT']}\"",
            "token = open(sa + '/token').read()",
            "ctx = ssl.create_default_context(cafile=sa + '/ca.crt')",
            "auth = {'Authorization': 'Bearer ' + token}",
            "req = urllib.request.Request(url + '/version', headers=auth)",
            "print(json.load(urllib.request.urlopen(req, context=ctx, timeout=10))['gitVersion'])",
        ]
    )
    pod = python_pod(kube, "client", command=["python3", "-c", script], restart_policy="Never")
    core.create_namespaced_pod(namespace, pod)

    def finished() -> str | None:
        phase = core.read_namespaced_pod("client", namespace).status.phase
        return phase if phase in {"Succeeded", "Failed"} else None

    phase = wait_for(finished, timeout=START_SECONDS, what="the client pod to finish")
    logs = core.read_namespaced_pod_log("client", namespace)
    assert phase == "Succeeded", logs
    assert logs.strip() == kube.cluster.kubernetes_version
