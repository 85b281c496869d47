"""A real local Kubernetes cluster for the demo and the tests.

kwokctl runs etcd, kube-apiserver, kube-controller-manager and kube-scheduler
(built from Go modules, see `tools.py`) as local processes; a real node
(`node.py`: containerd, kubelet, kube-proxy, in a network namespace of its own,
see `network.py`) runs real containers, and KWOK simulates a few more nodes that
run nothing, for tests of pure control-plane behaviour and the scale benchmark.
Every control-plane process binds to 127.0.0.1 on free ports, RBAC and admission
are on, and the kubeconfig is written to the cluster's own directory: the user's
~/.kube/config and current context are never touched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from modelrollout.devenv import network as net
from modelrollout.devenv.images import ImagesError, ensure_images
from modelrollout.devenv.node import NODE_KIND_LABEL, NodeError, NodeImages, RealNode
from modelrollout.devenv.tools import (
    REPO_ROOT,
    ClusterTools,
    ToolsError,
    ensure_tools,
    pinned_versions,
)

DEFAULT_NAME = "modelrollout"
DEFAULT_WORKDIR = REPO_ROOT / ".local" / "kwok"
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node=fake"
# KWOK's nodes run nothing: a pod there is Running and Ready without a container.
# The taint keeps every pod that does not ask for them on the real node, so nothing
# that serves a request or is judged by traffic can land on a simulated node by chance.
SIMULATED_NODE_TAINT_KEY = "modelrollout.io/simulated"
# Three simulated nodes: enough to see pods spread and a rollout keep capacity while one
# revision scales down; each simulated node costs almost nothing.
DEFAULT_NODES = 3
# A cold start of the binaries takes about ten seconds here; three minutes leaves
# room for a loaded CI machine without hanging forever on a broken one.
START_TIMEOUT_SECONDS = 180.0

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


def on_simulated_nodes(pod_spec: dict[str, Any]) -> dict[str, Any]:
    """`pod_spec` (a PodSpec as a dict) placed on KWOK's simulated nodes on purpose:
    it tolerates their taint and selects them. For what needs no container: the
    scale benchmark, and tests of the control plane's and the operator's own work."""
    return {
        **pod_spec,
        "tolerations": [
            *pod_spec.get("tolerations", []),
            {"key": SIMULATED_NODE_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"},
        ],
        "nodeSelector": {**pod_spec.get("nodeSelector", {}), NODE_KIND_LABEL: "simulated"},
    }


class ClusterError(RuntimeError):
    """The local cluster could not be started, reached or stopped."""


@dataclass(frozen=True)
class LocalCluster:
    name: str
    workdir: Path
    tools: ClusterTools
    # The controller-manager's and scheduler's API rate limit; None keeps their
    # defaults (20 and 50 queries/s), which pace a thousand Deployments.
    controllers_qps: int | None = None
    # What the real node imports into containerd (the pause image among them);
    # None: a cluster of simulated nodes only, e.g. to stop one (no images needed).
    node_images: NodeImages | None = None

    @property
    def directory(self) -> Path:
        return self.workdir / "clusters" / self.name

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig.yaml"

    @property
    def context(self) -> str:
        return f"kwok-{self.name}"

    @property
    def node_directory(self) -> Path:
        # Beside kwokctl's cluster directory, not in it: kwokctl owns that one.
        return self.workdir / "nodes" / self.name

    @property
    def network(self) -> net.NodeNetwork:
        return net.allocate(self.node_directory / "network.json")

    @property
    def node(self) -> RealNode:
        return RealNode(
            cluster_name=self.name,
            directory=self.node_directory,
            network=self.network,
            kubelet_binary=self.tools.path("kubelet"),
            kube_proxy_binary=self.tools.path("kube-proxy"),
        )

    def env(self) -> dict[str, str]:
        """The environment for anything that talks to this cluster and nothing else."""
        env = os.environ.copy()
        env["KWOK_WORKDIR"] = str(self.workdir)
        env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    def kwokctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run([str(self.tools.kwokctl), "--name", self.name, *args], check=check)

    def kubectl(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self._run(
            [str(self.tools.kubectl), "--kubeconfig", str(self.kubeconfig), *args],
            check=check,
            stdin=stdin,
        )

    def _run(
        self, argv: Sequence[str], *, check: bool, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, env=self.env(), check=False
        )
        if check and result.returncode != 0:
            raise ClusterError(
                f"`{' '.join(argv)}` failed (exit {result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        return result

    def is_running(self) -> bool:
        if not self.kubeconfig.exists():
            return False
        probe = self.kubectl("get", "--raw", "/readyz", "--request-timeout=5s", check=False)
        return probe.returncode == 0 and probe.stdout.strip() == "ok"

    def up(self, nodes: int = DEFAULT_NODES, log: Log = _stderr) -> bool:
        """Starts the cluster, or reuses a running one. Returns True when reused."""
        if os.geteuid() != 0:
            raise ClusterError(
                "the local cluster's real node needs root (network namespace, "
                "iptables, containerd); run as root"
            )
        if self.is_running():
            if not self.node.is_running():
                log(f"cluster {self.name!r} is running without its node; restarting the node")
                self.node.stop(log)
                self._start_node(log)
                self.wait_usable(nodes)
            log(f"cluster {self.name!r} is already running; reusing it")
            return True
        if self.directory.exists() or self.node_directory.exists():
            log(f"removing the stopped remains of cluster {self.name!r}")
            self._remove(log)
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Before any component can send to a Service or pod address, those ranges
        # lead into the node's namespace, not out of the machine.
        net.create(self.network)
        config = self.workdir / f"{self.name}.kwokctl.yaml"
        config.write_text(yaml.safe_dump(self._kwokctl_configuration(), sort_keys=False))
        log(
            f"starting cluster {self.name!r} (Kubernetes {self.kubernetes_version}, binary runtime)"
        )
        started = time.monotonic()
        self.kwokctl(
            "--config", str(config),
            "create", "cluster",
            # An empty --kubeconfig keeps kwokctl away from ~/.kube/config.
            "--kubeconfig", "",
            "--wait", f"{int(START_TIMEOUT_SECONDS)}s",
        )  # fmt: skip
        network = self.network
        self.kwokctl(
            "scale", "node", "--replicas", str(nodes),
            "--param", f'.podCIDRs=["{network.fake_pod_cidr}"]',
            "--param", f'.nodeIPs=["{network.fake_node_ip}"]',
        )  # fmt: skip
        # Before the real node registers and before any pod exists: every node now is KWOK's.
        self.kubectl("label", "nodes", "--all", f"{NODE_KIND_LABEL}=simulated")
        self.kubectl("taint", "nodes", "--all", f"{SIMULATED_NODE_TAINT_KEY}=true:NoSchedule")
        net.forward_api_server(network, self.api_server_port())
        self._start_node(log)
        self.wait_usable(nodes)
        self.assert_local()
        log(
            f"cluster {self.name!r} ready with a real node and {nodes} simulated nodes "
            f"in {time.monotonic() - started:.1f} s"
        )
        return False

    def _start_node(self, log: Log) -> None:
        if self.node_images is None:
            raise ClusterError(f"cluster {self.name!r}: no images given for its real node")
        self.node.start(
            admin_kubeconfig=self.kubeconfig,
            pki_dir=self.directory / "pki",
            images=self.node_images,
            log=log,
        )

    def api_server_port(self) -> int:
        server = self._kubeconfig_server()
        port = urlparse(server).port
        if port is None:
            raise ClusterError(f"{self.kubeconfig}: no port in the server address {server}")
        return port

    def _kubeconfig_server(self) -> str:
        config: dict[str, Any] = yaml.safe_load(self.kubeconfig.read_text()) or {}
        cluster_name = _entry(config, "contexts", self.context)["cluster"]
        return str(_entry(config, "clusters", cluster_name)["server"])

    def down(self, log: Log = _stderr) -> None:
        if not self.directory.exists() and not self.node_directory.exists():
            log(f"no cluster {self.name!r} to stop")
            return
        self._remove(log)
        log(f"cluster {self.name!r} stopped and removed")

    def _remove(self, log: Log) -> None:
        """The node first (its pods, mounts, cgroups), then its network, then the
        control plane: nothing may be left that still holds the node's files."""
        if self.node_directory.exists():
            self.node.stop(log)
            net.remove(self.network)
        if self.directory.exists():
            self.kwokctl("delete", "cluster")
        shutil.rmtree(self.node_directory, ignore_errors=True)

    @property
    def kubernetes_version(self) -> str:
        return pinned_versions()["KUBERNETES_VERSION"]

    def _kwokctl_configuration(self) -> dict[str, object]:
        return {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokctlConfiguration",
            "options": {
                "runtime": "binary",
                "kubeVersion": self.kubernetes_version,
                "bindAddress": "127.0.0.1",
                "kubeAuthorization": True,
                "kubeAdmission": True,
                "kubeApiserverBinary": str(self.tools.path("kube-apiserver")),
                "kubeControllerManagerBinary": str(self.tools.path("kube-controller-manager")),
                "kubeSchedulerBinary": str(self.tools.path("kube-scheduler")),
                "kwokControllerBinary": str(self.tools.path("kwok")),
                "etcdBinary": str(self.tools.path("etcd")),
                "kubectlBinary": str(self.tools.kubectl),
                # Pods dial the API server at the `kubernetes` Service's address and
                # at the host end of the node's veth (kwokctl adds loopback itself).
                "kubeApiserverCertSANs": [
                    self.network.kubernetes_service_ip,
                    self.network.host_address,
                ],
            },
            "componentsPatches": [
                {"name": "kube-apiserver", "extraArgs": self._api_server_args()},
                {
                    # The real node is kubelet's: KWOK acts for its own fake nodes only
                    # (left alone it reports fake pod IPs for the real node's pods).
                    "name": "kwok-controller",
                    "extraArgs": [
                        {"key": "manage-all-nodes", "value": "false"},
                        {
                            "key": "manage-nodes-with-annotation-selector",
                            "value": FAKE_NODE_ANNOTATION,
                        },
                    ],
                },
                *self._controller_patches(),
            ],
        }

    def _api_server_args(self) -> list[dict[str, str]]:
        network = self.network
        pki = self.directory / "pki"
        args = {
            # kube-apiserver's built-in default is a /24: 254 Service IPs, used up by
            # 84 ModelDeployments (3 Services each). A /16 per cluster instead.
            "service-cluster-ip-range": network.service_cidr,
            # The `kubernetes` Service's endpoint: the host end of the node's veth,
            # forwarded to the loopback socket (network.forward_api_server).
            "advertise-address": network.host_address,
            # For `kubectl logs/exec/port-forward`: the API server dials the real
            # node's kubelet at its InternalIP with the cluster's client certificate.
            "kubelet-preferred-address-types": "InternalIP",
            "kubelet-client-certificate": str(pki / "admin.crt"),
            "kubelet-client-key": str(pki / "admin.key"),
            # Aggregated APIs (metrics-server's metrics.k8s.io) are dialled at their
            # endpoint: the API server runs on the host, outside kube-proxy's reach.
            "enable-aggregator-routing": "true",
        }
        return [{"key": key, "value": value} for key, value in args.items()]

    def _controller_patches(self) -> list[dict[str, object]]:
        limits = (
            []
            if self.controllers_qps is None
            else [
                {"key": "kube-api-qps", "value": str(self.controllers_qps)},
                {"key": "kube-api-burst", "value": str(2 * self.controllers_qps)},
            ]
        )
        # The HPA controller looks every 5 s (default 15) and scales down after 30 s
        # of lower recommendations (default 5 min), so autoscaling tests see both
        # directions in a minute or two; the decisions themselves are the real ones.
        hpa = [
            {"key": "horizontal-pod-autoscaler-sync-period", "value": "5s"},
            {"key": "horizontal-pod-autoscaler-downscale-stabilization", "value": "30s"},
        ]
        patches: list[dict[str, object]] = [
            {"name": "kube-controller-manager", "extraArgs": [*limits, *hpa]}
        ]
        if limits:
            patches.append({"name": "kube-scheduler", "extraArgs": limits})
        return patches

    def wait_usable(self, nodes: int) -> None:
        """Waits until the real node and `nodes` simulated ones are Ready and pods
        can be admitted in `default`."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        checks: list[tuple[str, Callable[[], bool]]] = [
            ("nodes Ready", lambda: self._ready_nodes() >= nodes + 1),
            # The ServiceAccount admission plugin rejects pods until the
            # controller-manager has made the namespace's default account.
            (
                "default ServiceAccount",
                lambda: (
                    self.kubectl("get", "serviceaccount", "default", check=False).returncode == 0
                ),
            ),
        ]
        for what, check in checks:
            while not check():
                if time.monotonic() > deadline:
                    raise ClusterError(f"cluster {self.name!r}: timed out waiting for {what}")
                time.sleep(0.5)

    def _ready_nodes(self) -> int:
        result = self.kubectl(
            "get", "nodes", "-o",
            "jsonpath={range .items[*]}{.status.conditions[?(@.type=='Ready')].status}{'\\n'}{end}",
            check=False,
        )  # fmt: skip
        return result.stdout.split().count("True") if result.returncode == 0 else 0

    def component_memory(self) -> dict[str, int]:
        """Resident memory (bytes) of each running control-plane and node process
        (the node's pods not included)."""
        pids = {
            f.stem: f.read_text().strip() for f in sorted((self.directory / "pids").glob("*.pid"))
        }
        if self.node_directory.exists():
            pids |= {component: str(pid) for component, pid in self.node.pids().items()}
        usage: dict[str, int] = {}
        for component, pid in pids.items():
            status = Path(f"/proc/{pid}/status")
            if not status.exists():
                continue
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    usage[component] = int(line.split()[1]) * 1024
        return usage

    def assert_local(self) -> None:
        """Refuses a kubeconfig that points anywhere but this local cluster."""
        assert_local_kubeconfig(self.kubeconfig, self.context)


def assert_local_kubeconfig(kubeconfig: Path, context: str) -> None:
    config: dict[str, Any] = yaml.safe_load(kubeconfig.read_text()) or {}
    current = config.get("current-context")
    if current != context:
        raise ClusterError(
            f"{kubeconfig}: current context is {current!r}, not the local cluster's {context!r}"
        )
    try:
        cluster_name = _entry(config, "contexts", context)["cluster"]
        server = str(_entry(config, "clusters", cluster_name)["server"])
    except (KeyError, TypeError) as error:
        raise ClusterError(f"{kubeconfig}: context {context!r} is incomplete ({error})") from None
    if urlparse(server).hostname not in {"127.0.0.1", "localhost", "::1"}:
        raise ClusterError(f"{kubeconfig}: context {context!r} points at {server}, not loopback")


def _entry(config: dict[str, Any], section: str, name: str) -> dict[str, Any]:
    """The body of the named entry of a kubeconfig section (contexts, clusters)."""
    kind = section.removesuffix("s")
    for item in config.get(section) or []:
        if item.get("name") == name:
            body: dict[str, Any] = item[kind]
            return body
    raise KeyError(f"no {kind} named {name!r}")


def local_cluster(
    name: str = DEFAULT_NAME,
    workdir: Path = DEFAULT_WORKDIR,
    controllers_qps: int | None = None,
    *,
    with_images: bool = True,
) -> LocalCluster:
    """The cluster `name`; `with_images` builds (or finds cached) what its real node
    imports, which only starting it needs."""
    return LocalCluster(
        name=name,
        workdir=workdir,
        tools=ensure_tools(),
        controllers_qps=controllers_qps,
        node_images=node_images() if with_images else None,
    )


def node_images() -> NodeImages:
    built = ensure_images()
    return NodeImages(
        pause=built.pause_image,
        workload=built.modelserver_image,
        operator=built.operator_image,
        tarballs=(
            (built.pause_image, built.pause_image_tar),
            (built.modelserver_image, built.modelserver_image_tar),
            (built.operator_image, built.operator_image_tar),
        ),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelrollout.devenv.cluster")
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--name", default=DEFAULT_NAME)
    parser.add_argument("--nodes", type=int, default=DEFAULT_NODES)
    args = parser.parse_args(argv)
    try:
        cluster = local_cluster(args.name, with_images=args.action == "up")
        if args.action == "up":
            cluster.up(nodes=args.nodes)
            # Alone on the last line, so scripts can eval or parse it.
            print(f"KUBECONFIG={cluster.kubeconfig.resolve()}")
        elif args.action == "down":
            cluster.down()
        else:
            running = cluster.is_running()
            print(f"cluster {args.name!r}: {'running' if running else 'not running'}")
            memory = cluster.component_memory() if running else {}
            for component, rss in memory.items():
                print(f"  {component:<26} {rss / 2**20:7.1f} MiB resident")
            if memory:
                print(f"  {'total':<26} {sum(memory.values()) / 2**20:7.1f} MiB resident")
            return 0 if running else 1
    except (ClusterError, net.NetworkError, NodeError, ToolsError, ImagesError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
