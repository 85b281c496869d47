"""A real Prometheus (Debian's `prometheus` package) on a free loopback port.

The demo and the end-to-end tests scrape real model servers with it, so the
analysis is proven against the same query engine users run. Storage lives in a
throwaway directory; the lifecycle API is on so scrape targets can be reloaded.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from modelrollout.devenv.ports import free_port
from modelrollout.devenv.processes import stop_child

PROMETHEUS_BINARY = "prometheus"
# Debian's Prometheus is ready in about a second; the margin covers a busy CI machine.
READY_TIMEOUT_SECONDS = 60.0


class PrometheusError(RuntimeError):
    """Prometheus could not be started or answered badly."""


@dataclass
class LocalPrometheus:
    url: str
    config_path: Path
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    _stopped: bool = field(default=False, repr=False)

    def configure(self, scrape_configs: Sequence[Mapping[str, Any]], scrape_interval: str) -> None:
        """Replaces the scrape configuration and makes Prometheus reload it."""
        write_config(self.config_path, scrape_configs, scrape_interval)
        self._post("/-/reload")

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector (for tests and the demo's timeline)."""
        body = self._get("/api/v1/query", {"query": promql})
        if body.get("status") != "success":
            raise PrometheusError(f"query {promql!r} failed: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def active_targets(self) -> list[dict[str, Any]]:
        targets: list[dict[str, Any]] = self._get("/api/v1/targets")["data"]["activeTargets"]
        return targets

    def is_ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        stop_child(self.process, grace_seconds=15)

    def _get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        response = requests.get(f"{self.url}{path}", params=params, timeout=10)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def _post(self, path: str) -> None:
        response = requests.post(f"{self.url}{path}", timeout=10)
        if response.status_code != 200:
            raise PrometheusError(f"POST {path} answered {response.status_code}: {response.text}")


def write_config(
    path: Path, scrape_configs: Sequence[Mapping[str, Any]], scrape_interval: str
) -> None:
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [dict(c) for c in scrape_configs],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def start_prometheus(
    workdir: Path,
    scrape_configs: Sequence[Mapping[str, Any]] = (),
    scrape_interval: str = "5s",
    port: int | None = None,
    binary: Path | None = None,
) -> LocalPrometheus:
    """Starts Prometheus with the given scrape configs and waits until it is ready.

    `binary`: another Prometheus than Debian's, e.g. the one tools/cluster/build.sh
    builds with the Kubernetes service discovery Debian's package leaves out.
    """
    found = str(binary) if binary is not None else shutil.which(PROMETHEUS_BINARY)
    if found is None:
        raise PrometheusError(
            "prometheus is not installed; `make deps` installs Debian's `prometheus` package"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "prometheus.yml"
    data_dir = workdir / "data"
    write_config(config_path, scrape_configs, scrape_interval)
    address = f"127.0.0.1:{port or free_port()}"
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                found,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={data_dir}",
                f"--web.listen-address={address}",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=1d",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    prometheus = LocalPrometheus(
        url=f"http://{address}",
        config_path=config_path,
        data_dir=data_dir,
        process=process,
        log_path=log_path,
    )
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not prometheus.is_ready():
        if process.poll() is not None or time.monotonic() > deadline:
            prometheus.stop()
            tail = log_path.read_text(errors="replace")[-2000:]
            raise PrometheusError(f"Prometheus did not become ready on {address}:\n{tail}")
        time.sleep(0.2)
    return prometheus


def pod_discovery_config(
    kubeconfig: Path, namespaces: Sequence[str], job: str = "modelservers"
) -> dict[str, Any]:
    """A scrape config (for a Prometheus built with `kubernetes_sd_configs`, not
    Debian's) that finds model-server pods the way a user's Prometheus would:
    Kubernetes service discovery (role pod) through the API server, kept by the
    operator's pod labels and the container port named `http`,
    scraped at the pod's IP, with the target labels the analysis queries use
    (`namespace`, `pod`, `deployment`: the ModelDeployment, `revision`).

    honor_labels: the servers label every series with model_name and model_version
    themselves; without it Prometheus would rename theirs to exported_model_version.
    """
    label = "__meta_kubernetes_pod_label_"
    return {
        "job_name": job,
        "honor_labels": True,
        "kubernetes_sd_configs": [
            {
                "role": "pod",
                "kubeconfig_file": str(kubeconfig),
                "namespaces": {"names": list(namespaces)},
            }
        ],
        "relabel_configs": [
            {"source_labels": [f"{label}app_kubernetes_io_managed_by"],
             "regex": "modelrollout", "action": "keep"},
            {"source_labels": ["__meta_kubernetes_pod_container_port_name"],
             "regex": "http", "action": "keep"},
            {"source_labels": ["__meta_kubernetes_pod_phase"],
             "regex": "Running", "action": "keep"},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            {"source_labels": [f"{label}modelrollout_io_deployment"], "target_label": "deployment"},
            {"source_labels": [f"{label}modelrollout_io_revision"], "target_label": "revision"},
        ],
    }  # fmt: skip
