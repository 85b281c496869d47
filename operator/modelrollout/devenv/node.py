"""A real node for the local cluster: containerd, kubelet and kube-proxy.

KWOK's simulated nodes run nothing: a pod there is Running and Ready without a
process, a Service has no packets to route and a readiness probe gates nothing.
This node runs real containers (containerd from Debian, runc, the CNI bridge
plugins) from images built on this machine (`devenv/images.py`; no registry is
reachable, so pods never pull), with kubelet and kube-proxy built from the same
pinned Kubernetes module as the control plane.

Everything lives in the node's network namespace (`devenv/network.py`) and under
two directories of its own: the node directory (containerd's content and
snapshots, kubelet's root, logs) and a short run directory for sockets. `stop`
removes every process, mount, cgroup, namespace, link, route and iptables chain
that `start` made.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from modelrollout.devenv import network as net
from modelrollout.devenv.processes import pid_alive, stop_group

# Which kind of node a node is: `real` here, `simulated` on KWOK's (cluster.py).
NODE_KIND_LABEL = "modelrollout.io/node"
# Each v1 hierarchy kubelet and runc use; cgroupRoot must exist in all of them.
CGROUP_V1_ROOT = Path("/sys/fs/cgroup")
CNI_BIN_DIR = Path("/usr/lib/cni")
CONTAINERD_NAMESPACE = "k8s.io"
KUBELET_PORT = 10250
STOP_GRACE_SECONDS = 20.0

Log = Callable[[str], None]


class NodeError(RuntimeError):
    """The real node could not be started, reached or stopped."""


@dataclass(frozen=True)
class NodeImages:
    """Image tarballs the node imports into containerd before it registers."""

    pause: str  # containerd's sandbox image
    workload: str  # the model-server image: model servers and the tests' Python pods
    operator: str  # the operator image (no ML libraries): the Helm chart's operator pod
    # (reference, `docker save` tarball) of each image to import. A reference names
    # its content (tags are digests of the build inputs), so one already in
    # containerd is the same image and is not imported again.
    tarballs: tuple[tuple[str, Path], ...]


@dataclass(frozen=True)
class RealNode:
    cluster_name: str
    directory: Path  # content, snapshots, kubelet root, logs, configs
    network: net.NodeNetwork
    kubelet_binary: Path
    kube_proxy_binary: Path
    ctr_binary: Path = Path("/usr/bin/ctr")

    @property
    def name(self) -> str:
        return f"{self.cluster_name}-node"

    @property
    def run_dir(self) -> Path:
        # Unix socket paths are limited to 108 bytes: keep them short, off the repo.
        return Path("/run/modelrollout") / self.cluster_name

    @property
    def containerd_socket(self) -> Path:
        return self.run_dir / "containerd.sock"

    @property
    def containerd_root(self) -> Path:
        """Content and snapshots, kept between runs of the cluster's slot: importing
        and unpacking the project's images (800 + 360 MB) is most of a cold node start."""
        return _cache_root() / "node" / f"slot-{self.network.slot}" / "containerd"

    @property
    def containerd_state(self) -> Path:
        return self.run_dir / "containerd-state"

    @property
    def kubelet_root(self) -> Path:
        return self.directory / "kubelet"

    @property
    def cgroup_root(self) -> str:
        """Pods' cgroups, per cluster, so two nodes' pods never share a parent."""
        return f"/modelrollout-{self.network.slot}"

    @property
    def log_dir(self) -> Path:
        return self.directory / "logs"

    def log_path(self, component: str) -> Path:
        return self.log_dir / f"{component}.log"

    def _pid_file(self, component: str) -> Path:
        return self.directory / "pids" / f"{component}.pid"

    def pids(self) -> dict[str, int]:
        """The running node components by name."""
        running = {}
        for component in ("containerd", "kubelet", "kube-proxy"):
            pid_file = self._pid_file(component)
            with contextlib.suppress(OSError, ValueError):
                pid = int(pid_file.read_text())
                if pid_alive(pid):
                    running[component] = pid
        return running

    def is_running(self) -> bool:
        return len(self.pids()) == 3

    # -- start -----------------------------------------------------------------

    def start(
        self,
        *,
        admin_kubeconfig: Path,
        pki_dir: Path,
        images: NodeImages,
        log: Log,
    ) -> None:
        """Starts containerd, imports the images, then kubelet and kube-proxy."""
        for directory in (self.directory, self.run_dir, self.log_dir, self.directory / "pids"):
            directory.mkdir(parents=True, exist_ok=True)
        self._prepare_cgroups()
        kubeconfig = self._write_node_kubeconfig(admin_kubeconfig)
        started = time.monotonic()
        self._spawn(
            "containerd", ["containerd", "--config", str(self._write_containerd_config(images))]
        )
        self._wait(self.containerd_socket.exists, "containerd's socket", 30)
        self._wait(lambda: self._ctr("version", check=False).returncode == 0, "containerd", 30)
        self._forget_old_containers()
        imported = self._import_images(images)
        log(f"node {self.name}: containerd up, {imported} of {len(images.tarballs)} image(s) "
            f"imported (the others kept from the slot's last run) "
            f"in {time.monotonic() - started:.1f} s")  # fmt: skip
        self._spawn(
            "kubelet",
            [
                str(self.kubelet_binary),
                f"--config={self._write_kubelet_config(pki_dir)}",
                f"--kubeconfig={kubeconfig}",
                f"--hostname-override={self.name}",
                f"--node-ip={self.network.node_address}",
                f"--root-dir={self.kubelet_root}",
                f"--cert-dir={self.directory / 'kubelet-pki'}",
                f"--node-labels={NODE_KIND_LABEL}=real",
                "--v=1",
            ],
        )
        self._spawn(
            "kube-proxy",
            [str(self.kube_proxy_binary), f"--config={self._write_kube_proxy_config(kubeconfig)}"],
        )

    def _forget_old_containers(self) -> None:
        """The kept content store still lists the last run's pod sandboxes and
        containers (their processes are gone): drop them and their snapshots, so
        kubelet starts on a node with no pods."""
        for container in self._ctr("containers", "ls", "-q").stdout.split():
            self._ctr("tasks", "delete", "--force", container, check=False)
            self._ctr("containers", "delete", container, check=False)

    def _import_images(self, images: NodeImages) -> int:
        """Imports what containerd lacks and removes images no longer asked for, so the
        kept content store does not grow with every rebuilt image. Returns the count
        imported."""
        wanted = {containerd_reference(name): tarball for name, tarball in images.tarballs}
        present = set(self._ctr("images", "ls", "-q").stdout.split())
        for stale in sorted(present - set(wanted)):
            self._ctr("images", "rm", stale, check=False)
        missing = [tarball for reference, tarball in wanted.items() if reference not in present]
        for tarball in missing:
            # Unpacked now, so a pod's first start does not pay for it.
            self._ctr("images", "import", str(tarball))
        return len(missing)

    def _spawn(self, component: str, argv: list[str]) -> None:
        with self.log_path(component).open("ab") as output:
            process = subprocess.Popen(
                net.in_netns(self.network.netns, argv),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                # Its own group: stop() signals the component, not our process.
                start_new_session=True,
            )
        self._pid_file(component).write_text(str(process.pid))

    def _wait(self, check: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            dead = [c for c in ("containerd", "kubelet", "kube-proxy")
                    if self._pid_file(c).exists() and c not in self.pids()]  # fmt: skip
            if dead:
                raise NodeError(
                    f"node {self.name}: {dead[0]} exited; last lines of "
                    f"{self.log_path(dead[0])}:\n{self.tail(dead[0])}"
                )
            if time.monotonic() > deadline:
                raise NodeError(
                    f"node {self.name}: timed out after {timeout:.0f} s waiting for {what}"
                )
            time.sleep(0.2)

    def tail(self, component: str, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(
                self.log_path(component).read_text(errors="replace").splitlines()[-lines:]
            )
        return "<no log>"

    def _ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(self.ctr_binary), "--address", str(self.containerd_socket),
                "--namespace", CONTAINERD_NAMESPACE, *args]  # fmt: skip
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise NodeError(f"`{' '.join(argv)}` failed: {result.stderr.strip()}")
        return result

    def _prepare_cgroups(self) -> None:
        for hierarchy in _cgroup_v1_hierarchies():
            group = hierarchy / self.cgroup_root.lstrip("/")
            group.mkdir(exist_ok=True)
            if hierarchy.name == "cpuset":
                # A new cpuset starts empty; its tasks could run nowhere.
                for knob in ("cpuset.cpus", "cpuset.mems"):
                    if not (group / knob).read_text().strip():
                        (group / knob).write_text((hierarchy / knob).read_text())

    def _write_node_kubeconfig(self, admin_kubeconfig: Path) -> Path:
        """The admin kubeconfig with the API server at the host end of the veth:
        in the node's namespace 127.0.0.1 is the node's own loopback."""
        config = yaml.safe_load(admin_kubeconfig.read_text())
        for cluster in config.get("clusters") or []:
            server = str(cluster["cluster"]["server"])
            port = server.rsplit(":", 1)[1]
            cluster["cluster"]["server"] = f"https://{self.network.host_address}:{port}"
        path = self.directory / "kubeconfig.yaml"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def _write_containerd_config(self, images: NodeImages) -> Path:
        cni_conf_dir = self.directory / "cni" / "net.d"
        cni_conf_dir.mkdir(parents=True, exist_ok=True)
        (cni_conf_dir / "10-modelrollout.conflist").write_text(
            json.dumps(self._cni_config(), indent=2)
        )
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        text = f"""\
version = 2
root = "{self.containerd_root}"
state = "{self.containerd_state}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{self.containerd_socket}"
[ttrpc]
  address = "{self.run_dir / "containerd.sock.ttrpc"}"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{self.directory / "containerd-opt"}"
[{cri}]
  sandbox_image = "{images.pause}"
  # No CAP_SYS_RESOURCE here: without this every pod sandbox fails to start.
  restrict_oom_score_adj = true
  # The pods' network namespaces under the state directory, so stop() finds them.
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{cni_conf_dir}"
    max_conf_num = 1
  [{cri}.registry]
    config_path = ""
"""
        path = self.directory / "containerd.toml"
        path.write_text(text)
        return path

    def _cni_config(self) -> dict[str, object]:
        return {
            "cniVersion": "1.0.0",
            "name": "modelrollout",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "cni0",
                    "isGateway": True,
                    # Pods have nowhere to go beyond this machine: no masquerade out.
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [
                            [
                                {
                                    "subnet": self.network.node_pod_subnet,
                                    "gateway": self.network.node_pod_gateway,
                                }
                            ]
                        ],
                        # Every destination via the node: Services and the host end
                        # of the veth (the node's namespace itself has no way out).
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self.directory / "cni" / "ipam"),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }

    def _write_kubelet_config(self, pki_dir: Path) -> Path:
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": self.cgroup_root,
            "failCgroupV1": False,
            "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "address": self.network.node_address,
            "port": KUBELET_PORT,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": 10248,
            # The API server proves itself with the cluster's client certificate
            # (its --kubelet-client-certificate); nobody else gets in.
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(pki_dir / "ca.crt")},
            },
            "authorization": {"mode": "Webhook"},
            # ConfigMap volumes (the shadow step's <name>-shadow) are refreshed on the
            # pod sync: every 10 s here instead of the default minute.
            "syncFrequency": "10s",
            # No cluster DNS and no host resolver inside pods: name lookups would
            # otherwise go to the machine's own resolver.
            "resolvConf": "",
            "podLogsDir": str(self.directory / "pod-logs"),
            # The sandbox cannot lower oom_score_adj.
            "oomScoreAdj": 0,
            "enforceNodeAllocatable": [],
            "localStorageCapacityIsolation": False,
            # Images are imported, never pulled: collecting them would lose them.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
            },
            "serializeImagePulls": False,
            "rotateCertificates": False,
            "staticPodPath": "",
            "maxPods": 110,
        }
        path = self.directory / "kubelet.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def _write_kube_proxy_config(self, kubeconfig: Path) -> Path:
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(kubeconfig)},
            "mode": "iptables",
            "hostnameOverride": self.name,
            "clusterCIDR": self.network.pod_cidr,
            "metricsBindAddress": "127.0.0.1:10249",
            "healthzBindAddress": "127.0.0.1:10256",
            # nf_conntrack_max is the host's, read-only in a network namespace.
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
            },
            # Traffic from the host and pod-to-Service on the same bridge come back
            # through the node, where conntrack undoes the DNAT.
            "iptables": {"masqueradeAll": True, "localhostNodePorts": False},
        }
        path = self.directory / "kube-proxy.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    # -- stop ------------------------------------------------------------------

    def stop(self, log: Log) -> None:
        """Stops everything `start` started and removes what it left on the host."""
        running = self.pids()
        for component in ("kube-proxy", "kubelet"):
            if component in running:
                stop_group(running[component], STOP_GRACE_SECONDS)
        self._kill_pod_processes()
        if "containerd" in running:
            stop_group(running["containerd"], STOP_GRACE_SECONDS)
        self._kill_shims()
        self._unmount_all()
        self._remove_cgroups()
        shutil.rmtree(self.run_dir, ignore_errors=True)
        if running:
            log(f"node {self.name}: stopped {', '.join(sorted(running))}")

    def _kill_pod_processes(self) -> None:
        """Every process in the pods' cgroups, so none outlives the node."""
        for _ in range(50):
            pids = self._cgroup_pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        raise NodeError(
            f"node {self.name}: pod processes {sorted(self._cgroup_pids())} survive SIGKILL"
        )

    def _cgroup_pids(self) -> set[int]:
        found: set[int] = set()
        for hierarchy in _cgroup_v1_hierarchies():
            group = hierarchy / self.cgroup_root.lstrip("/")
            # os.walk, not Path.rglob: the kubelet removes pod cgroups while we
            # walk, and rglob raises on a directory that vanished mid-walk.
            for directory, _, files in os.walk(group):
                if "cgroup.procs" not in files:
                    continue
                with contextlib.suppress(OSError, ValueError):
                    procs = Path(directory, "cgroup.procs").read_text()
                    found.update(int(p) for p in procs.split())
        return found

    def _kill_shims(self) -> None:
        """containerd's shims outlive containerd by design; ours name its socket."""
        marker = str(self.containerd_socket).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if marker in (entry / "cmdline").read_bytes():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(entry.name), signal.SIGKILL)

    def _unmount_all(self) -> None:
        """Rootfs overlays, pod volumes (tmpfs) and pod network namespaces, deepest first."""
        roots = self._roots()
        for _ in range(3):
            mounts = [m for m in _mount_points() if m.startswith(roots)]
            if not mounts:
                return
            for mount in sorted(mounts, key=len, reverse=True):
                subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
        left = [m for m in _mount_points() if m.startswith(roots)]
        if left:
            raise NodeError(f"node {self.name}: mounts left after unmounting: {left[:5]}")

    def _roots(self) -> tuple[str, ...]:
        return (str(self.directory), str(self.run_dir), str(self.containerd_root))

    def _remove_cgroups(self) -> None:
        for hierarchy in _cgroup_v1_hierarchies():
            group = hierarchy / self.cgroup_root.lstrip("/")
            # Deepest first, the group itself last (os.walk bottom-up); a missing or
            # vanishing directory is skipped.
            for directory, _, _ in os.walk(group, topdown=False):
                with contextlib.suppress(OSError):
                    Path(directory).rmdir()

    def leftovers(self) -> dict[str, list[str]]:
        """What of this node is still on the host: for tests that prove stop() is whole."""
        roots = self._roots()
        cgroups = [str(h / self.cgroup_root.lstrip("/")) for h in _cgroup_v1_hierarchies()
                   if (h / self.cgroup_root.lstrip("/")).exists()]  # fmt: skip
        return {
            "processes": [str(p) for p in self.pids().values()],
            "mounts": [m for m in _mount_points() if m.startswith(roots)],
            "cgroups": cgroups,
        }


def _cache_root() -> Path:
    """The cache the build scripts use (tools/cluster/build.sh, tools/images/build.sh)."""
    configured = os.environ.get("MODELROLLOUT_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "modelrollout"


def containerd_reference(name: str) -> str:
    """An image name as containerd stores it: Docker's short names expanded
    (`modelrollout:dev-x` is `docker.io/library/modelrollout:dev-x`)."""
    first, _, rest = name.partition("/")
    if not rest:
        return f"docker.io/library/{name}"
    if "." in first or ":" in first or first == "localhost":
        return name
    return f"docker.io/{name}"


def _cgroup_v1_hierarchies() -> list[Path]:
    if not CGROUP_V1_ROOT.is_dir():
        return []
    return [p for p in CGROUP_V1_ROOT.iterdir() if p.is_dir() and (p / "cgroup.procs").exists()]


def _mount_points() -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        # Octal escapes (a space is \040) as the kernel writes them.
        points.append(line.split()[4].encode().decode("unicode_escape"))
    return points
