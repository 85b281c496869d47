"""What runs beside the local cluster so rollouts are judged on real metrics
from real pods: an artifact store the model-server pods download their models
from, Prometheus finding those pods through the API server (`kubernetes_sd_configs`,
role pod) and scraping their IPs, and client traffic to each ModelDeployment's
Service, routed by kube-proxy. The pods themselves are the operator's: this only
writes the pod template a user would (`served_spec`).

The demo, the end-to-end tests and the benchmarks all use this one assembly, so
the figures come from the setup the tests prove. As a command
(`python -m modelrollout.devenv.stack`) it runs until SIGTERM or Ctrl-C and then
stops everything it started; the demo leaves it running in the background.

Dev and test tooling, not the operator.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kubernetes import client, config

from modelrollout.api import names as n
from modelrollout.devenv.artifacts import ArtifactStore
from modelrollout.devenv.cluster import LocalCluster, local_cluster
from modelrollout.devenv.postgres import PostgresServer
from modelrollout.devenv.processes import stop_on_signals, wait_for_signal
from modelrollout.devenv.prometheus import (
    LocalPrometheus,
    pod_discovery_config,
    start_prometheus,
)
from modelrollout.devenv.registry import RegistryServer
from modelrollout.devenv.traffic import Traffic

MODELROLLOUT = Path(sys.executable).parent / "modelrollout"
VARIANTS = ("baseline", "improved", "degraded", "shifted")


# The servers of one ModelDeployment's version: the namespace and `deployment`
# (the ModelDeployment's name) target labels keep another rollout's version "2"
# out, and a deleted and recreated object's old series too once they go stale.
_REVISION_SERIES = (
    'namespace="{{ namespace }}",deployment="{{ name }}",model_version="{{ version }}"'
)


def error_rate_query(window: str) -> str:
    """Share of inference requests answered 5xx by the revision being measured.

    `or vector(0)`: a revision that never failed has no 5xx series at all, and
    its error rate is 0, not "no data" (which would pause the rollout).
    """
    selector = f'{_REVISION_SERIES},endpoint="infer"'
    return (
        f'(sum(rate(modelserver_requests_total{{{selector},code=~"5.."}}[{window}])) or vector(0))'
        f" / sum(rate(modelserver_requests_total{{{selector}}}[{window}]))"
    )


# The worst feature's PSI on any of the revision's servers.
DRIFT_QUERY = f"max(modelserver_feature_drift_psi{{{_REVISION_SERIES}}})"
# 1 once one of the revision's servers has loaded its model: a smoke check that
# needs no traffic (e.g. a blue/green preview nobody calls).
MODEL_LOADED_QUERY = f"max(modelserver_model_info{{{_REVISION_SERIES}}})"
# Live accuracy from labelled feedback, averaged over the revision's servers.
ACCURACY_QUERY = f"avg(modelserver_feedback_accuracy{{{_REVISION_SERIES}}})"
# A regressor's live mean absolute error from labelled feedback, the same way.
MAE_QUERY = f"avg(modelserver_feedback_mae{{{_REVISION_SERIES}}})"
# A shadow step's comparison: the share of copied rows on which the challenger (the
# canary) agreed with the stable's answer, on the stable's worst server.
SHADOW_AGREEMENT_QUERY = (
    'min(modelserver_shadow_agreement_ratio{namespace="{{ namespace }}",deployment="{{ name }}",'
    'model_version="{{ stableVersion }}",challenger_version="{{ canaryVersion }}"})'
)
# Small windows so seconds of traffic make drift and accuracy visible (150 rows
# keep the PSI of undrifted wine traffic under ~0.1, the shifted model near 0.9);
# the server's defaults (1000 rows, 5 s) suit production traffic, not a demo.
FAST_SERVER_ENV = {
    "MODELSERVER_DRIFT_WINDOW": "300",
    "MODELSERVER_DRIFT_MIN_SAMPLES": "150",
    "MODELSERVER_DRIFT_INTERVAL_SECONDS": "1",
    "MODELSERVER_FEEDBACK_WINDOW": "100",
    "MODELSERVER_FEEDBACK_MIN_SAMPLES": "30",
    "MODELSERVER_SHADOW_WINDOW": "300",
    "MODELSERVER_SHADOW_MIN_SAMPLES": "150",
}


# skops refuses types it does not trust by default; the baseline's decision tree
# holds one. We trained it ourselves, so the manifest says so explicitly.
SKOPS_TRUSTED = {"baseline": "sklearn.tree._tree.Tree"}


@dataclass(frozen=True)
class Artifact:
    variant: str
    uri: str
    sha256: str
    holdout_accuracy: float

    def server_env(self) -> dict[str, str]:
        """What a pod template must set for a server to load this artifact."""
        trusted = SKOPS_TRUSTED.get(self.variant)
        return {"MODELSERVER_SKOPS_TRUSTED": trusted} if trusted else {}


def train_variants(
    out_dir: Path, dataset: str = "wine", variants: Sequence[str] = VARIANTS
) -> dict[str, Artifact]:
    """Trains the variants with `modelrollout train`, as a user would."""
    argv = [str(MODELROLLOUT), "train", "--dataset", dataset, "--out", str(out_dir)]
    for variant in variants:
        argv += ["--variant", variant]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"modelrollout train failed: {result.stderr.strip()}")
    return {
        a["variant"]: Artifact(a["variant"], a["uri"], a["sha256"], a["holdout_accuracy"])
        for a in json.loads(result.stdout)["artifacts"]
    }


# What Pod Security Admission's `restricted` profile asks of every container.
RESTRICTED: dict[str, Any] = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
MODEL_DIR = "/models"
# How long the command waits for the ModelDeployment's Service to appear.
STAGE_SECONDS = 300.0


def model_server_template(
    image: str, artifact: Artifact | None, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """The pod template of a real model server (`args: [serve]`), as a user writes
    it: the model-server image, never pulled (it is imported into the node); the
    artifact downloaded at start into an emptyDir (the root filesystem is read-only)
    and checked against MODEL_SHA256, which the operator injects with MODEL_URI;
    readiness on the server's ready endpoint, which gates the Service's endpoints.
    `artifact` None: a registry model (the operator injects its models:/ URI).
    """
    variables = {
        **FAST_SERVER_ENV,
        **(artifact.server_env() if artifact else {}),
        "MODELSERVER_ARTIFACT_DIR": MODEL_DIR,
        **(env or {}),
    }
    container = {
        "name": "server",
        "image": image,
        "imagePullPolicy": "Never",
        "args": ["serve"],
        "ports": [
            {"name": "http", "containerPort": 8080},
            {"name": "grpc", "containerPort": 8081},
        ],
        "env": [{"name": k, "value": v} for k, v in variables.items()],
        # Every second, but a slow answer is not a failure: on 2 busy cores (a
        # crash-looping canary reloading scikit-learn beside it) a healthy server
        # can take over the default 1 s to answer.
        "readinessProbe": {
            "httpGet": {"path": "/v2/health/ready", "port": "http"},
            "periodSeconds": 1,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "securityContext": {**RESTRICTED, "readOnlyRootFilesystem": True},
        "volumeMounts": [{"name": "models", "mountPath": MODEL_DIR}],
    }
    return {
        "spec": {
            "containers": [container],
            "volumes": [{"name": "models", "emptyDir": {}}],
            # Longer than the server's drain (MODELSERVER_SHUTDOWN_DRAIN_SECONDS,
            # 5 s): it keeps answering until its endpoint is gone everywhere.
            "terminationGracePeriodSeconds": 15,
        }
    }


def served_spec(
    image: str,
    artifact: Artifact,
    uri: str,
    version: str,
    *,
    model: str,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A ModelDeployment spec's `model` and `template` for real model-server pods
    serving `artifact` as `version`, downloaded from `uri`."""
    return {
        "model": {"name": model, "version": version, "uri": uri, "sha256": artifact.sha256},
        "template": model_server_template(image, artifact, env),
    }


class ServingStack:
    """The artifact store, Prometheus for `namespaces`, and traffic on demand, for
    the model-server pods of `cluster`'s real node."""

    def __init__(
        self,
        cluster: LocalCluster,
        namespaces: Sequence[str],
        workdir: Path,
        *,
        scrape_interval: str = "1s",
        prometheus_port: int | None = None,
        artifacts: Path | None = None,
    ) -> None:
        self.cluster = cluster
        self.namespaces = list(namespaces)
        self.workdir = workdir
        self.scrape_interval = scrape_interval
        network = cluster.network  # read from the node's record: once
        self.store = ArtifactStore(artifacts or workdir / "artifacts", network)
        self.api = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(cluster.kubeconfig)
        )
        self.allowed = [ipaddress.ip_network(r) for r in network.routed_ranges]
        self._prometheus_port = prometheus_port
        self._prometheus: LocalPrometheus | None = None
        self._registry: RegistryServer | None = None
        self._records: PostgresServer | None = None
        self._traffic: list[Traffic] = []

    @property
    def prometheus(self) -> LocalPrometheus:
        assert self._prometheus is not None, "the stack is not started"
        return self._prometheus

    @property
    def image(self) -> str:
        images = self.cluster.node_images
        if images is None:
            raise RuntimeError(f"cluster {self.cluster.name!r} was given no images")
        return images.workload

    def start(self) -> None:
        try:
            self.store.start()
            self.start_prometheus()
        except BaseException:
            self.stop()
            raise

    def start_prometheus(self) -> None:
        """Starts Prometheus; after `stop_prometheus`, on the same port and storage,
        as a restarted Prometheus pod behind its Service would be."""
        self._prometheus = start_prometheus(
            self.workdir / "prometheus",
            [pod_discovery_config(self.cluster.kubeconfig, self.namespaces)],
            scrape_interval=self.scrape_interval,
            port=self._prometheus_port,
            binary=self.cluster.tools.prometheus,
        )
        self._prometheus_port = urlsplit(self._prometheus.url).port

    def start_registry(self) -> RegistryServer:
        """The embedded MLflow registry, at one URL for the pods and this machine."""
        if self._registry is None:
            self._registry = RegistryServer(self.workdir / "mlflow", self.cluster.network)
            self._registry.start()
        return self._registry

    def start_records(self) -> PostgresServer:
        """The inference-records store (PostgreSQL), at one DSN for the pods and here."""
        if self._records is None:
            self._records = PostgresServer(self.workdir / "records", self.cluster.network)
            self._records.start()
        return self._records

    def stop_prometheus(self) -> None:
        if self._prometheus is not None:
            self._prometheus.stop()

    def served_spec(
        self,
        artifact: Artifact,
        version: str,
        *,
        model: str = "wine",
        replicas: int | None = None,
        env: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The spec's `model` and `template` (and `replicas`, when given) for real
        pods serving `artifact` as `version`, downloaded from the store."""
        uri = self.store.publish(Path(urlsplit(artifact.uri).path))
        spec = served_spec(self.image, artifact, uri, version, model=model, env=env)
        if replicas is not None:
            spec["replicas"] = replicas
        return spec

    def traffic(self, namespace: str, service: str, **options: Any) -> Traffic:
        """Starts traffic to a Service's ClusterIP; it stops with the stack."""
        options = {"model": "wine", **options}
        traffic = Traffic(self.api, namespace, service, allowed=self.allowed, **options)
        traffic.start()
        self._traffic.append(traffic)
        return traffic

    def stop(self) -> None:
        for traffic in self._traffic:
            traffic.stop()
        self._traffic.clear()
        self.store.stop()
        self.stop_prometheus()
        if self._registry is not None:
            self._registry.stop()
            self._registry = None
        if self._records is not None:
            self._records.stop()
            self._records = None

    def server_logs(self, tail_lines: int = 60) -> str:
        """The end of each model-server container's log (and of its previous run,
        after a restart), for a failing test's report."""
        core = client.CoreV1Api(self.api)
        parts = []
        for namespace in self.namespaces:
            pods = core.list_namespaced_pod(
                namespace, label_selector=f"{n.LABEL_MANAGED_BY}={n.MANAGER}"
            ).items
            for pod in pods:
                name = pod.metadata.name if pod.metadata else None
                if not name:
                    continue
                for previous in (True, False):
                    try:
                        text = core.read_namespaced_pod_log(
                            name, namespace, tail_lines=tail_lines, previous=previous
                        )
                    except client.ApiException:
                        continue  # no previous run, or the pod never started
                    which = "previous run" if previous else "log"
                    parts.append(f"--- {namespace}/{name} ({which}) ---\n{text}")
        return "\n".join(parts)


@contextmanager
def serving_stack(
    cluster: LocalCluster, namespaces: Sequence[str], workdir: Path, **options: Any
) -> Iterator[ServingStack]:
    stack = ServingStack(cluster, namespaces, workdir, **options)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m modelrollout.devenv.stack",
        description="An artifact store, Prometheus and client traffic for the model-server "
        "pods of a local cluster, until stopped.",
    )
    parser.add_argument("--cluster", required=True, help="the local cluster's name")
    parser.add_argument("--workdir-of-clusters", type=Path, help="its workdir (default: .local)")
    parser.add_argument("--namespace", "-n", required=True)
    parser.add_argument("--service", required=True, help="the ModelDeployment to send traffic to")
    parser.add_argument("--model", required=True, help="spec.model.name")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--artifacts", type=Path, required=True, help="the directory served")
    parser.add_argument("--prometheus-port", type=int)
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--feedback-share", type=float, default=0.3)
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds of traffic")
    parser.add_argument(
        "--registry", action="store_true", help="also run the MLflow model registry"
    )
    parser.add_argument(
        "--records", action="store_true", help="also run the inference-records store"
    )
    args = parser.parse_args(argv)
    stop_on_signals()
    extra = {"workdir": args.workdir_of_clusters} if args.workdir_of_clusters else {}
    cluster = local_cluster(args.cluster, with_images=False, **extra)
    stack = ServingStack(
        cluster,
        [args.namespace],
        args.workdir,
        prometheus_port=args.prometheus_port,
        artifacts=args.artifacts,
    )
    stack.start()
    try:
        started = {"prometheus": stack.prometheus.url, "artifacts": stack.store.url}
        if args.registry:
            started["registry"] = stack.start_registry().url
        if args.records:
            # The DSN carries the store's password: the file is the user's alone.
            started["records"] = stack.start_records().dsn
        _write_json(args.workdir / "stack.json", started)
        print(f"prometheus={stack.prometheus.url} artifacts={stack.store.url}", flush=True)
        # The ModelDeployment comes after the stack; traffic waits for its Service.
        traffic = stack.traffic(
            args.namespace,
            args.service,
            model=args.model,
            rate=args.rate,
            feedback_share=args.feedback_share,
            duration=args.duration,
            service_wait=STAGE_SECONDS,
        )
        # What the demo's timeline shows: which versions answer, in what shares.
        stopped = threading.Event()
        writer = threading.Thread(
            target=_write_status,
            args=(traffic, args.workdir / "traffic.json", stopped),
            daemon=True,
        )
        writer.start()
        wait_for_signal()
        stopped.set()
    finally:
        stack.stop()
    return 0


def _write_json(path: Path, body: dict[str, Any]) -> None:
    partial = path.with_name(f".{path.name}.tmp")
    partial.touch(mode=0o600)
    partial.write_text(json.dumps(body))
    partial.replace(path)


def _write_status(traffic: Traffic, path: Path, stopped: threading.Event) -> None:
    while not stopped.wait(1.0):
        _write_json(path, traffic.summary())


if __name__ == "__main__":
    sys.exit(main())
