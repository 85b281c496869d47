"""Tests and the demo only ever talk to the local cluster: a kubeconfig whose
current context is another cluster, or that points off this machine, is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modelrollout.devenv.cluster import ClusterError, assert_local_kubeconfig

pytestmark = pytest.mark.unit


def kubeconfig(tmp_path: Path, current: str, server: str) -> Path:
    path = tmp_path / "kubeconfig.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": current,
                "contexts": [
                    {"name": "kwok-modelrollout-test", "context": {"cluster": "local"}},
                    {"name": "production", "context": {"cluster": "prod"}},
                ],
                "clusters": [
                    {"name": "local", "cluster": {"server": server}},
                    {"name": "prod", "cluster": {"server": "https://10.1.2.3:6443"}},
                ],
            }
        )
    )
    return path


def test_the_local_context_on_loopback_is_accepted(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path, "kwok-modelrollout-test", "https://127.0.0.1:32764")
    assert_local_kubeconfig(path, "kwok-modelrollout-test")


def test_another_current_context_is_refused(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path, "production", "https://127.0.0.1:32764")
    with pytest.raises(ClusterError, match="current context is 'production'"):
        assert_local_kubeconfig(path, "kwok-modelrollout-test")


def test_a_local_name_pointing_off_the_machine_is_refused(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path, "kwok-modelrollout-test", "https://192.168.1.10:6443")
    with pytest.raises(ClusterError, match="not loopback"):
        assert_local_kubeconfig(path, "kwok-modelrollout-test")
