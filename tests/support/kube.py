"""The tests' handle on the local cluster: a session-wide control plane, one
fresh namespace per test, and clients that can only reach that cluster."""

from __future__ import annotations

import atexit
import os
import signal
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from kubernetes import client, config

from modelrollout.devenv.cluster import LocalCluster, local_cluster
from modelrollout.devenv.processes import pid_alive
from modelrollout.devenv.tools import REPO_ROOT

TEST_CLUSTER_PREFIX = "modelrollout-test-"
TEST_WORKDIR = REPO_ROOT / ".local" / "kwok-test"


def remove_orphaned_clusters() -> None:
    """Deletes test clusters whose pytest process is gone (killed with SIGKILL,
    say), so no control plane outlives its session for long."""
    clusters = TEST_WORKDIR / "clusters"
    if not clusters.is_dir():
        return
    for directory in clusters.iterdir():
        suffix = directory.name.removeprefix(TEST_CLUSTER_PREFIX)
        if suffix.isdigit() and not pid_alive(int(suffix)):
            local_cluster(directory.name, TEST_WORKDIR, with_images=False).down(log=lambda _m: None)


@dataclass(frozen=True)
class ClusterUnderTest:
    cluster: LocalCluster
    api: client.ApiClient

    @property
    def kubeconfig(self) -> Path:
        return self.cluster.kubeconfig

    def kubectl(self, *args: str, check: bool = True, stdin: str | None = None) -> str:
        return self.cluster.kubectl(*args, check=check, stdin=stdin).stdout

    def install_gateway_api(self, channel: str = "standard") -> None:
        """The Gateway API CRDs at the pinned version (idempotent: server-side apply),
        so the real API server validates routes as a cluster with a gateway would."""
        for manifest in self.cluster.tools.gateway_api_crds(channel):
            self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(manifest))
        self.kubectl(
            "wait", "--for=condition=Established", "crd", "httproutes.gateway.networking.k8s.io"
        )


@contextmanager
def running_test_cluster() -> Iterator[ClusterUnderTest]:
    """Starts the test cluster and always tears it down: at the end of the
    session, on a failure, on Ctrl-C, and on SIGTERM (CI's way of stopping us)."""
    # One cluster per session (named after this process), so parallel sessions,
    # e.g. two developers' runs on one machine, never share or stop each other's.
    remove_orphaned_clusters()
    cluster = local_cluster(f"{TEST_CLUSTER_PREFIX}{os.getpid()}", TEST_WORKDIR)
    previous_sigterm = signal.getsignal(signal.SIGTERM)

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    # Last resort if the interpreter exits without unwinding this generator.
    atexit.register(cluster.down, log=lambda _m: None)
    try:
        cluster.up()
        cluster.assert_local()
        # Everything started from here on (kubectl, the operator, helpers) sees
        # only this cluster, whatever the user's own KUBECONFIG says.
        os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
        api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        try:
            yield ClusterUnderTest(cluster=cluster, api=api)
        finally:
            api.close()
    finally:
        cluster.down()
        atexit.unregister(cluster.down)
        signal.signal(signal.SIGTERM, previous_sigterm)


@contextmanager
def fresh_namespace(test_cluster: ClusterUnderTest, prefix: str = "t") -> Iterator[str]:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(test_cluster.api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")
