"""What runs beside the local cluster so rollouts are judged on real metrics:
Prometheus scraping the pod runner's model servers (file-based discovery) and
client traffic through each ModelDeployment's Service.

The demo, the end-to-end tests and the rollback benchmark all use this one
assembly, so the figures come from the setup the tests prove. As a command
(`python -m modelrollout.devenv.stack`) it runs until SIGTERM or Ctrl-C and
then stops everything it started; the demo leaves it running in the background.

Dev and test tooling, not the operator.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from modelrollout.devenv.podrunner import (
    PodRunner,
    scrape_config,
    stop_on_signals,
    wait_for_signal,
)
from modelrollout.devenv.prometheus import LocalPrometheus, start_prometheus
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
# Small windows so seconds of traffic make drift and accuracy visible (150 rows
# keep the PSI of undrifted wine traffic under ~0.1, the shifted model near 0.9);
# the server's defaults (1000 rows, 5 s) suit production traffic, not a demo.
FAST_SERVER_ENV = {
    "MODELSERVER_DRIFT_WINDOW": "300",
    "MODELSERVER_DRIFT_MIN_SAMPLES": "150",
    "MODELSERVER_DRIFT_INTERVAL_SECONDS": "1",
    "MODELSERVER_FEEDBACK_WINDOW": "100",
    "MODELSERVER_FEEDBACK_MIN_SAMPLES": "30",
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


class ServingStack:
    """Prometheus and the pod runner for `namespaces`; traffic on demand."""

    def __init__(
        self,
        kubeconfig: Path,
        namespaces: Sequence[str],
        workdir: Path,
        scrape_interval: str = "1s",
        prometheus_port: int | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.scrape_interval = scrape_interval
        self.file_sd = workdir / "targets.json"
        self.runner = PodRunner(kubeconfig, namespaces, self.file_sd, workdir / "servers")
        self._prometheus_port = prometheus_port
        self._prometheus: LocalPrometheus | None = None
        self._traffic: list[Traffic] = []

    @property
    def prometheus(self) -> LocalPrometheus:
        assert self._prometheus is not None, "the stack is not started"
        return self._prometheus

    def start(self) -> None:
        try:
            self.runner.start()
            self.start_prometheus()
        except BaseException:
            self.stop()
            raise

    def start_prometheus(self) -> None:
        """Starts Prometheus; after `stop_prometheus`, on the same port and storage,
        as a restarted Prometheus pod behind its Service would be."""
        self._prometheus = start_prometheus(
            self.workdir / "prometheus",
            [scrape_config(self.file_sd)],
            scrape_interval=self.scrape_interval,
            port=self._prometheus_port,
        )
        self._prometheus_port = urlsplit(self._prometheus.url).port

    def stop_prometheus(self) -> None:
        if self._prometheus is not None:
            self._prometheus.stop()

    def traffic(self, namespace: str, service: str, **options: Any) -> Traffic:
        """Starts traffic to a Service; it stops with the stack."""
        traffic = Traffic(self.kubeconfig, namespace, service, self.file_sd, **options)
        traffic.start()
        self._traffic.append(traffic)
        return traffic

    def stop(self) -> None:
        for traffic in self._traffic:
            traffic.stop()
        self._traffic.clear()
        self.runner.stop()
        self.stop_prometheus()

    def server_logs(self, tail: int = 3000) -> str:
        """The end of each model server's log, for a failing test's report."""
        return "\n".join(
            f"--- {path.name} ---\n{path.read_text(errors='replace')[-tail:]}"
            for path in sorted((self.workdir / "servers").glob("*.log"))
        )


@contextmanager
def serving_stack(
    kubeconfig: Path, namespaces: Sequence[str], workdir: Path, **options: Any
) -> Iterator[ServingStack]:
    stack = ServingStack(kubeconfig, namespaces, workdir, **options)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m modelrollout.devenv.stack",
        description="Prometheus, model servers for simulated pods, and traffic, until stopped.",
    )
    parser.add_argument("--kubeconfig", type=Path, default=os.environ.get("KUBECONFIG"))
    parser.add_argument("--namespace", "-n", required=True)
    parser.add_argument("--service", required=True, help="the ModelDeployment to send traffic to")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--prometheus-port", type=int)
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--feedback-share", type=float, default=0.3)
    args = parser.parse_args(argv)
    if args.kubeconfig is None:
        parser.error("--kubeconfig or KUBECONFIG is required")
    stop_on_signals()
    stack = ServingStack(
        args.kubeconfig, [args.namespace], args.workdir, prometheus_port=args.prometheus_port
    )
    stack.start()
    try:
        traffic = stack.traffic(
            args.namespace, args.service, rate=args.rate, feedback_share=args.feedback_share
        )
        # What the demo's timeline shows: which versions answer, in what shares.
        status = args.workdir / "traffic.json"
        stopped = threading.Event()
        writer = threading.Thread(
            target=_write_status, args=(traffic, status, stopped), daemon=True
        )
        writer.start()
        print(f"prometheus={stack.prometheus.url}", flush=True)
        wait_for_signal()
        stopped.set()
    finally:
        stack.stop()
    return 0


def _write_status(traffic: Traffic, path: Path, stopped: threading.Event) -> None:
    while not stopped.wait(1.0):
        partial = path.with_name(f".{path.name}.tmp")
        partial.write_text(json.dumps(traffic.summary()))
        partial.replace(path)


if __name__ == "__main__":
    sys.exit(main())
