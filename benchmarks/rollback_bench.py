"""Detection-to-rollback time: how long clients keep reaching a failing canary
once Prometheus can see it fail. Prints figures; asserts nothing.

Run: `.venv/bin/python benchmarks/rollback_bench.py [--repeats 2]`.

Setup per measurement, on the local cluster with the real operator: v1 serves
(2 real model-server pods on the cluster's real node, 30 req/s to the
Service's ClusterIP, routed by kube-proxy); v2 is canaried at 50% and answers
half of its inferences 500 (MODELSERVER_FAULT_ERROR_RATE in its template). The
metric is the error rate over a 10 s window, max 0.05.

- start: the timestamp of the first scrape that holds a 5xx answer of v2
  (raw samples of modelserver_requests_total read back from Prometheus): the
  first moment any analysis could have seen the failure.
- decided: status.lastRollback.at (the operator's rollback decision).
- end: the first poll (every 0.1 s) at which the main Service's ready endpoints
  are all on the stable revision: all traffic is back on stable.
- last v2 answer: when a client of the ClusterIP last got an answer from v2.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from kubernetes import client, config

from modelrollout.api import names as n
from modelrollout.devenv.cluster import local_cluster
from modelrollout.devenv.stack import Artifact, ServingStack, serving_stack, train_variants
from modelrollout.devenv.tools import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tests"))
from support.serving import ERROR_RATE, HALF_FAILING, RATE, model_deployment

NAMESPACE = "bench"
POLL_SECONDS = 0.1
# A rollback takes seconds here; the limit only catches a broken setup.
RUN_TIMEOUT_SECONDS = 240.0
MODELROLLOUT = Path(sys.executable).parent / "modelrollout"


class Bench:
    def __init__(self, kubeconfig: Path, models: dict[str, Artifact]) -> None:
        api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.discovery = client.DiscoveryV1Api(api)
        self.models = models

    def status(self, name: str) -> dict[str, Any]:
        body = cast(
            "dict[str, Any]",
            self.custom.get_namespaced_custom_object(n.GROUP, n.VERSION, NAMESPACE, n.PLURAL, name),
        )
        return dict(body.get("status") or {})

    def wait(self, name: str, predicate: Any, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            status = self.status(name)
            if predicate(status):
                return status
            time.sleep(POLL_SECONDS)
        raise TimeoutError(f"{name}: {what}")

    def endpoint_revisions(self, name: str) -> set[str]:
        slices = self.discovery.list_namespaced_endpoint_slice(
            NAMESPACE, label_selector=f"kubernetes.io/service-name={name}"
        ).items
        pods: dict[str, str] = {
            p.metadata.name: (p.metadata.labels or {}).get(n.LABEL_REVISION, "")
            for p in self.core.list_namespaced_pod(NAMESPACE).items
            if p.metadata and p.metadata.name
        }
        return {
            pods[e.target_ref.name]
            for s in slices
            for e in s.endpoints or []
            if e.conditions and e.conditions.ready and e.target_ref and e.target_ref.name in pods
        }

    def measure(
        self, stack: ServingStack, name: str, interval: str, failure_limit: int
    ) -> dict[str, float]:
        body = model_deployment(
            stack,
            name,
            self.models["improved"],
            metrics=[ERROR_RATE],
            strategy={"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}},
            interval=interval,
            failure_limit=failure_limit,
        )
        body["metadata"]["namespace"] = NAMESPACE
        self.custom.create_namespaced_custom_object(n.GROUP, n.VERSION, NAMESPACE, n.PLURAL, body)
        stable = self.wait(name, lambda s: s.get("phase") == "Healthy", "v1 Healthy")
        stable_revision = stable["stableRevision"]
        traffic = stack.traffic(NAMESPACE, name, rate=RATE)
        faulty = stack.served_spec(self.models["improved"], "2", env=HALF_FAILING)
        self.custom.patch_namespaced_custom_object(
            n.GROUP, n.VERSION, NAMESPACE, n.PLURAL, name, {"spec": faulty}
        )
        # Wait until the canary takes traffic, then for every endpoint back on stable.
        deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
        while traffic.stats().get("2") is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: v2 never answered")
            time.sleep(POLL_SECONDS)
        while self.endpoint_revisions(name) != {stable_revision}:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: traffic never returned to stable")
            time.sleep(POLL_SECONDS)
        end = time.time()
        # What clients got: the last answer v2 gave them (kube-proxy may still route a
        # connection to a pod whose endpoint just went; the server drains it).
        time.sleep(2.0)
        last_v2 = traffic.stats()["2"].last_answered
        assert last_v2 is not None
        last_v2_wall = time.time() - (time.monotonic() - last_v2)
        # The operator routes first and writes status after, in the same reconcile.
        status = self.wait(name, lambda s: "lastRollback" in s, "lastRollback recorded")
        decided = datetime.fromisoformat(status["lastRollback"]["at"]).timestamp()
        first_bad = first_failure_scraped(stack, name)
        self.custom.delete_namespaced_custom_object(n.GROUP, n.VERSION, NAMESPACE, n.PLURAL, name)
        return {
            "to_decision": decided - first_bad,
            "to_stable": end - first_bad,
            "to_last_v2_answer": last_v2_wall - first_bad,
            "value": float(status["lastRollback"]["value"]),
        }


def first_failure_scraped(stack: ServingStack, name: str) -> float:
    """Timestamp of the earliest scraped sample holding a 5xx answer of v2."""
    query = (
        f'modelserver_requests_total{{namespace="{NAMESPACE}",model_version="2",'
        f'endpoint="infer",code=~"5..",pod=~"{name}-.*"}}[15m]'
    )
    samples = [
        float(t)
        for series in stack.prometheus.query(query)
        for t, v in series["values"]
        if float(v) > 0
    ]
    if not samples:
        raise RuntimeError(f"{name}: Prometheus holds no 5xx sample of v2")
    return min(samples)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--intervals", default="2s,5s")
    parser.add_argument("--scrapes", default="1s,2s")
    parser.add_argument("--failure-limits", default="0,1")
    args = parser.parse_args()
    cluster = local_cluster("modelrollout-bench-rollback", REPO_ROOT / ".local" / "kwok-bench")
    cluster.up()
    workdir = Path(tempfile.mkdtemp(prefix="rollback-bench-"))
    operator: subprocess.Popen[bytes] | None = None
    results: list[tuple[str, str, int, dict[str, float]]] = []
    try:
        for manifest in sorted((REPO_ROOT / "crds").glob("*.yaml")):
            cluster.kubectl("apply", "--server-side", "-f", str(manifest))
        cluster.kubectl("wait", "--for=condition=Established", "crd", "--all")
        cluster.kubectl("create", "namespace", NAMESPACE, check=False)
        with (workdir / "operator.log").open("wb") as log:
            operator = subprocess.Popen(
                [str(MODELROLLOUT), "run", "-n", NAMESPACE, "--standalone"],
                stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
            )  # fmt: skip
        bench = Bench(cluster.kubeconfig, train_variants(workdir / "models", variants=["improved"]))
        run = 0
        for scrape in args.scrapes.split(","):
            with serving_stack(
                cluster, [NAMESPACE], workdir / f"stack-{scrape}", scrape_interval=scrape
            ) as stack:
                grid = itertools.product(
                    args.intervals.split(","), [int(f) for f in args.failure_limits.split(",")]
                )
                for interval, limit in grid:
                    for _ in range(args.repeats):
                        run += 1
                        figures = bench.measure(stack, f"b{run}", interval, limit)
                        results.append((interval, scrape, limit, figures))
                        print(
                            f"interval {interval} scrape {scrape} failureLimit {limit}: "
                            f"decided {figures['to_decision']:.1f} s, all traffic on stable "
                            f"{figures['to_stable']:.1f} s, last v2 answer to a client "
                            f"{figures['to_last_v2_answer']:.1f} s after the first bad scrape "
                            f"(error rate {figures['value']:.2f})",
                            flush=True,
                        )
    finally:
        if operator is not None:
            operator.terminate()
            operator.wait(timeout=30)
        cluster.down()
    print(
        "\n| analysis interval | scrape interval | failureLimit "
        "| to decision, s | to all traffic on stable, s | to the last v2 answer, s |"
    )
    print("|---|---|---:|---:|---:|---:|")
    keys = sorted({(i, s, f) for i, s, f, _ in results})
    for key in keys:
        rows = [r for i, s, f, r in results if (i, s, f) == key]
        decided = statistics.median(r["to_decision"] for r in rows)
        stable = statistics.median(r["to_stable"] for r in rows)
        spread = (
            f" ({min(r['to_stable'] for r in rows):.1f}-{max(r['to_stable'] for r in rows):.1f})"
        )
        shown = f"{stable:.1f}{spread if len(rows) > 1 else ''}"
        last = statistics.median(r["to_last_v2_answer"] for r in rows)
        print(f"| {key[0]} | {key[1]} | {key[2]} | {decided:.1f} | {shown} | {last:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
