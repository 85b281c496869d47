"""The local cluster stays on this machine and stays in its session: every
control-plane process listens on loopback only, the real node's components
listen only inside the node's own network namespace (which has no route off the
machine), and a test session stopped by SIGTERM (CI's way of stopping a run)
leaves no process, route, link, iptables chain, mount or cgroup behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from modelrollout.devenv import network as net
from modelrollout.devenv.node import RealNode
from modelrollout.devenv.tools import REPO_ROOT
from support.kube import TEST_CLUSTER_PREFIX, TEST_WORKDIR, ClusterUnderTest
from support.procs import command_line, listening_addresses, network_namespace, pids_mentioning
from support.waiting import wait_for

pytestmark = pytest.mark.integration

LOOPBACK = ("127.0.0.1:", "::1:")


def test_every_control_plane_process_listens_on_loopback_only(kube: ClusterUnderTest) -> None:
    cluster_dir = str(kube.cluster.workdir / "clusters" / kube.cluster.name)
    listening = listening_addresses(pids_mentioning(cluster_dir))
    components = " ".join(listening)
    for component in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        assert component in components, f"no listening {component} found: {listening}"
    exposed = {
        command[:80]: [a for a in addresses if not a.startswith(LOOPBACK)]
        for command, addresses in listening.items()
    }
    assert not any(exposed.values()), f"listening beyond loopback: {exposed}"


def test_the_real_node_listens_only_inside_its_own_network_namespace(
    kube: ClusterUnderTest,
) -> None:
    node = kube.cluster.node
    components = node.pids()
    assert set(components) == {"containerd", "kubelet", "kube-proxy"}, components
    node_netns = str(Path(net.NETNS_DIR / node.network.netns).stat().st_ino)
    host_netns = network_namespace(os.getpid())
    for component, pid in components.items():
        namespace = network_namespace(pid)
        assert namespace == f"net:[{node_netns}]", f"{component} runs in {namespace}"
        assert namespace != host_netns
    listening = listening_addresses(list(components.values()))
    allowed = (*LOOPBACK, f"{node.network.node_address}:")
    exposed = {
        c[:60]: [a for a in addr if not a.startswith(allowed)] for c, addr in listening.items()
    }
    assert not any(exposed.values()), f"node components listening beyond the node: {exposed}"
    routes = net.run(net.in_netns(node.network.netns, ["ip", "route", "show"])).stdout
    assert "default" not in routes, f"the node's namespace has a way out: {routes}"


def test_a_session_stopped_by_sigterm_leaves_no_cluster_process() -> None:
    # A test session of its own, in a child process: it starts its cluster, says
    # so, and waits to be stopped.
    session = textwrap.dedent(
        """
        import sys
        from support.kube import running_test_cluster
        with running_test_cluster() as kube:
            print(kube.kubeconfig, flush=True)
            sys.stdin.read()
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", session],
        cwd=REPO_ROOT / "tests",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    cluster_dir = TEST_WORKDIR / "clusters" / f"{TEST_CLUSTER_PREFIX}{child.pid}"
    try:
        assert child.stdout is not None
        kubeconfig = child.stdout.readline().strip()
        assert kubeconfig.startswith(str(cluster_dir)), kubeconfig
        started = pids_mentioning(str(cluster_dir))
        assert len(started) >= 4, [command_line(pid) for pid in started]
        node_dir = TEST_WORKDIR / "nodes" / cluster_dir.name
        network = net.NodeNetwork(**json.loads((node_dir / "network.json").read_text()))
        node_pids = pids_mentioning(str(node_dir))
        assert len(node_pids) >= 3, [command_line(pid) for pid in node_pids]

        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=120) != 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    wait_for(
        lambda: not pids_mentioning(str(cluster_dir)),
        timeout=30,
        what="the stopped session's control plane to be gone",
    )
    assert not cluster_dir.exists(), "the stopped session's cluster state is left"
    assert not node_dir.exists(), "the stopped session's node state is left"
    assert not pids_mentioning(str(node_dir)), "node processes are left"
    assert not (net.NETNS_DIR / network.netns).exists(), "the node's network namespace is left"
    links = net.run(["ip", "-o", "link", "show"]).stdout
    assert network.host_link not in links, "the node's veth is left"
    routes = net.run(["ip", "route", "show"]).stdout
    for cidr in network.routed_ranges:
        assert cidr not in routes, f"a route for {cidr} is left"
    chains = net.run(["iptables", "-t", "nat", "-S"]).stdout
    assert network.nat_chain not in chains, "the API server forwarding chain is left"
    node = RealNode(cluster_dir.name, node_dir, network, Path("kubelet"), Path("kube-proxy"))
    leftovers = node.leftovers()
    assert not any(leftovers.values()), leftovers
