"""The address plan and host plumbing of a local cluster's real node.

The node (containerd, kubelet, kube-proxy and the pods) lives in a network
namespace of its own, joined to the host by one veth pair. That keeps two local
clusters on one machine (the tests' and the demo's) from fighting over
kube-proxy's iptables chains, and it is what keeps cluster traffic on this
machine: the host routes the cluster's Service and pod ranges into the node's
namespace, and the node's namespace has no default route, so a packet for an
address nothing serves yet (a ClusterIP kube-proxy has not programmed) is
refused there instead of following the host's default route out.

Pods reach the API server through the `kubernetes` Service. The API server
listens on 127.0.0.1 only; the host end of the veth forwards its port to that
loopback socket (DNAT with route_localnet on that one link), so nothing listens
on an address another machine could reach. Other loopback servers the pods must
reach (the tests' Prometheus, a webhook receiver) are forwarded the same way,
one port at a time (`expose_to_pods`).

Each cluster gets a slot (0-9) that fixes its ranges: slot 0 uses kubeadm's
familiar 10.96.0.0/16 for Services and 10.244.0.0/16 for pods.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

SLOTS = range(10)
NETNS_DIR = Path("/run/netns")
LOCK_FILE = Path("/run/modelrollout-network.lock")
# The host's own iptables: one chain per cluster, jumped to from PREROUTING.
NAT_CHAIN_PREFIX = "MODELROLLOUT-API-"


class NetworkError(RuntimeError):
    """The node's network could not be set up or removed."""


@dataclass(frozen=True)
class NodeNetwork:
    slot: int

    @property
    def netns(self) -> str:
        return f"modelrollout-node-{self.slot}"

    @property
    def host_link(self) -> str:
        return f"mrnode{self.slot}"

    @property
    def node_link(self) -> str:
        return "eth0"  # inside the node's namespace, so no clash with another cluster

    @property
    def service_cidr(self) -> str:
        return f"10.{96 + self.slot}.0.0/16"

    @property
    def kubernetes_service_ip(self) -> str:
        """The first address of the Service range: the `kubernetes` Service's."""
        return str(ipaddress.ip_network(self.service_cidr)[1])

    @property
    def pod_cidr(self) -> str:
        return f"10.{244 + self.slot}.0.0/16"

    @property
    def node_pod_subnet(self) -> str:
        """The real node's pods (host-local IPAM)."""
        return f"10.{244 + self.slot}.0.0/24"

    @property
    def node_pod_gateway(self) -> str:
        return f"10.{244 + self.slot}.0.1"

    @property
    def fake_pod_cidr(self) -> str:
        """KWOK's simulated nodes' pod subnets (one /24 per node from here up):
        inside the routed pod range, where nothing answers."""
        return f"10.{244 + self.slot}.128.0/24"

    @property
    def fake_node_ip(self) -> str:
        """KWOK's simulated nodes' addresses, counted up from here: routed into
        the node's namespace too, where nothing answers (KWOK's default,
        192.0.2.1, could be a real machine's gateway)."""
        return f"10.{244 + self.slot}.255.1"

    @property
    def host_address(self) -> str:
        """The host end of the veth: what pods dial for the API server."""
        return f"10.254.{self.slot}.1"

    @property
    def node_address(self) -> str:
        """The node end of the veth: the node's InternalIP (kubelet's port)."""
        return f"10.254.{self.slot}.2"

    @property
    def link_prefix(self) -> int:
        return 30

    @property
    def nat_chain(self) -> str:
        return f"{NAT_CHAIN_PREFIX}{self.slot}"

    @property
    def routed_ranges(self) -> tuple[str, str]:
        return (self.service_cidr, self.pod_cidr)


def run(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise NetworkError(
            f"`{' '.join(argv)}` failed (exit {result.returncode}): "
            f"{result.stderr.strip() or result.stdout.strip()}"
        )
    return result


def in_netns(netns: str, argv: Sequence[str]) -> list[str]:
    """`argv` run in the node's network namespace only (not `ip netns exec`, which
    also gives the command a mount namespace of its own: kubelet's volume mounts
    and containerd's rootfs mounts must see each other)."""
    return ["nsenter", f"--net={NETNS_DIR / netns}", "--", *argv]


@contextlib.contextmanager
def _network_lock() -> Iterator[None]:
    """Two cluster-ups at once must not take the same slot."""
    with LOCK_FILE.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _slot_in_use(slot: int) -> bool:
    network = NodeNetwork(slot)
    if (NETNS_DIR / network.netns).exists():
        return True
    return run(["ip", "link", "show", network.host_link], check=False).returncode == 0


def allocate(record: Path) -> NodeNetwork:
    """The slot this cluster had (recorded beside its node), or the lowest free one."""
    if record.exists():
        return NodeNetwork(**json.loads(record.read_text()))
    with _network_lock():
        for slot in SLOTS:
            if not _slot_in_use(slot):
                network = NodeNetwork(slot)
                record.parent.mkdir(parents=True, exist_ok=True)
                record.write_text(json.dumps(asdict(network)))
                return network
    raise NetworkError(
        f"all {len(SLOTS)} local cluster network slots are taken "
        f"(see `ip netns list`); stop a local cluster first"
    )


def create(network: NodeNetwork) -> None:
    """The node's namespace, the veth between it and the host, and the host routes
    that send the Service and pod ranges there. Idempotent."""
    ns = network.netns
    if not (NETNS_DIR / ns).exists():
        run(["ip", "netns", "add", ns])
    if run(["ip", "link", "show", network.host_link], check=False).returncode != 0:
        run(["ip", "link", "add", network.host_link, "type", "veth",
             "peer", "name", network.node_link, "netns", ns])  # fmt: skip
        run(["ip", "addr", "add", f"{network.host_address}/{network.link_prefix}",
             "dev", network.host_link])  # fmt: skip
        run(["ip", "-n", ns, "addr", "add", f"{network.node_address}/{network.link_prefix}",
             "dev", network.node_link])  # fmt: skip
    for argv in (
        ["ip", "link", "set", network.host_link, "up"],
        ["ip", "-n", ns, "link", "set", network.node_link, "up"],
        ["ip", "-n", ns, "link", "set", "lo", "up"],
    ):
        run(argv)
    for cidr in network.routed_ranges:
        run(["ip", "route", "replace", cidr, "via", network.node_address,
             "dev", network.host_link])  # fmt: skip
    # The node forwards between the veth and its pods' bridge; bridged pod-to-pod
    # packets pass kube-proxy's iptables rules (a Service whose endpoint is a pod
    # on the same bridge).
    for key in ("net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1"):
        run(in_netns(ns, ["sysctl", "-q", "-w", key]))
    # Replies from the API server's loopback socket may leave through this link.
    run(["sysctl", "-q", "-w", f"net.ipv4.conf.{network.host_link}.route_localnet=1"])


def forward_api_server(network: NodeNetwork, port: int) -> None:
    """Pods' connections to host_address:port reach the API server on 127.0.0.1:port."""
    chain = network.nat_chain
    if run(["iptables", "-t", "nat", "-L", chain, "-n"], check=False).returncode != 0:
        run(["iptables", "-t", "nat", "-N", chain])
    run(["iptables", "-t", "nat", "-F", chain])
    jump = ["PREROUTING", "-j", chain]
    if run(["iptables", "-t", "nat", "-C", *jump], check=False).returncode != 0:
        run(["iptables", "-t", "nat", "-A", *jump])
    expose_to_pods(network, port)


def _loopback_rule(network: NodeNetwork, port: int) -> list[str]:
    return [network.nat_chain, "-i", network.host_link, "-d", network.host_address,
            "-p", "tcp", "--dport", str(port),
            "-j", "DNAT", "--to-destination", f"127.0.0.1:{port}"]  # fmt: skip


def expose_to_pods(network: NodeNetwork, port: int) -> str:
    """A server of this machine listening on 127.0.0.1:port (a Prometheus, a
    webhook receiver, an artifact server) made reachable from the cluster's pods,
    and only from them, at the address returned (host_address:port)."""
    rule = _loopback_rule(network, port)
    if run(["iptables", "-t", "nat", "-C", *rule], check=False).returncode != 0:
        run(["iptables", "-t", "nat", "-A", *rule])
    return f"{network.host_address}:{port}"


def _local_rule(network: NodeNetwork, port: int) -> list[str]:
    return ["OUTPUT", "-o", "lo", "-d", network.host_address,
            "-p", "tcp", "--dport", str(port),
            "-j", "DNAT", "--to-destination", f"127.0.0.1:{port}"]  # fmt: skip


def expose_here_too(network: NodeNetwork, port: int) -> str:
    """`expose_to_pods`, and the same address answering this machine's own clients,
    for a URL that is written once into a manifest and used from both sides (the
    model registry's: the pods and an operator running here both call it). Only
    connections made on this machine are rewritten; nothing listens on host_address."""
    address = expose_to_pods(network, port)
    rule = _local_rule(network, port)
    if run(["iptables", "-t", "nat", "-C", *rule], check=False).returncode != 0:
        run(["iptables", "-t", "nat", "-A", *rule])
    return address


def unexpose(network: NodeNetwork, port: int) -> None:
    run(["iptables", "-t", "nat", "-D", *_loopback_rule(network, port)], check=False)
    run(["iptables", "-t", "nat", "-D", *_local_rule(network, port)], check=False)


def remove(network: NodeNetwork) -> None:
    """Undoes `create` and `forward_api_server`; what is already gone is fine.
    Deleting the namespace deletes the veth (both ends), the routes through it and
    the node's own iptables rules with it."""
    chain = network.nat_chain
    while (
        run(["iptables", "-t", "nat", "-D", "PREROUTING", "-j", chain], check=False).returncode == 0
    ):
        pass
    run(["iptables", "-t", "nat", "-F", chain], check=False)
    run(["iptables", "-t", "nat", "-X", chain], check=False)
    run(["ip", "link", "del", network.host_link], check=False)
    if (NETNS_DIR / network.netns).exists():
        run(["ip", "netns", "del", network.netns])
    for cidr in network.routed_ranges:
        run(["ip", "route", "del", cidr], check=False)


def route_device(address: str) -> str:
    """The device `ip route get` picks for `address` on the host ("" when unreachable)."""
    result = run(["ip", "-o", "route", "get", address], check=False)
    if result.returncode != 0:
        return ""
    words = result.stdout.split()
    return words[words.index("dev") + 1] if "dev" in words else ""
