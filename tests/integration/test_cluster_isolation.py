"""The local cluster stays on this machine and stays in its session: every
control-plane process listens on loopback only, and a test session stopped by
SIGTERM (CI's way of stopping a run) leaves none of them behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from modelrollout.devenv.tools import REPO_ROOT
from support.kube import TEST_CLUSTER_PREFIX, TEST_WORKDIR, ClusterUnderTest
from support.procs import command_line, listening_addresses, pids_mentioning
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
