"""Measures one operator process in front of many ModelDeployments on the local
cluster: time for all of them to become Healthy, time for all of them to roll out
a new model version through a canary step, and what the operator costs at rest
(CPU, memory, reconciles per second). Prints figures; asserts nothing.

Run: `.venv/bin/python benchmarks/scale_bench.py --objects 1000`
(about 10 minutes on 2 cores; the cluster gets enough KWOK nodes for the pods).

The canary has no analysis, so what is measured is the operator's own work
(watches, plans, writes) and the API server's, not Prometheus.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

from kubernetes import client, config
from prometheus_client.parser import text_string_to_metric_families

from modelrollout.api import names as n
from modelrollout.devenv.cluster import LocalCluster, local_cluster, on_simulated_nodes
from modelrollout.devenv.ports import free_port
from modelrollout.devenv.tools import REPO_ROOT

NAMESPACE = "scale"
# KWOK's default node holds 110 pods; a canary step briefly runs two pods per object.
PODS_PER_NODE = 110
IDLE_WINDOW_SECONDS = 120.0
# After the last promotion the old revisions scale down and report it; the
# rest measurement starts once that tail has passed.
SETTLE_SECONDS = 60.0
POLL_SECONDS = 2.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def model_deployment(name: str, version: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{n.GROUP}/{n.VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": 1,
            "model": {
                "name": "wine",
                "version": version,
                "uri": f"file:///models/wine-{version}.skops",
            },
            # The operator's cost is the figure, not the pods': they run nowhere.
            "template": {
                "spec": on_simulated_nodes(
                    {"containers": [{"name": "server", "image": "modelrollout:bench"}]}
                )
            },
            "service": {"port": 80},
            "strategy": {"canary": {"steps": [{"setWeight": 50}]}},
        },
    }


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reconciles(metrics_port: int) -> tuple[float, float]:
    """(reconciles so far, seconds spent in them), from the operator's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    totals = {"_count": 0.0, "_sum": 0.0}
    for family in text_string_to_metric_families(text):
        if family.name == "modelrollout_reconcile_duration_seconds":
            for sample in family.samples:
                for suffix in totals:
                    if sample.name.endswith(suffix):
                        totals[suffix] = sample.value
    return totals["_count"], totals["_sum"]


def describe(before: tuple[float, float], after: tuple[float, float]) -> str:
    count, seconds = after[0] - before[0], after[1] - before[1]
    mean = 1000 * seconds / count if count else float("nan")
    return f"{count:.0f} reconciles, mean {mean:.0f} ms"


def wait_all(
    custom: client.CustomObjectsApi, what: str, done: Callable[[dict[str, Any]], bool], total: int
) -> float:
    """Seconds until `done` holds for every object; prints progress meanwhile."""
    started = time.monotonic()
    last_print = 0.0
    while True:
        listing = cast(
            "dict[str, Any]",
            custom.list_namespaced_custom_object(n.GROUP, n.VERSION, NAMESPACE, n.PLURAL),
        )
        items: list[dict[str, Any]] = listing["items"]
        finished = sum(1 for item in items if done(item.get("status") or {}))
        elapsed = time.monotonic() - started
        if finished == total:
            print(f"  {what}: {total}/{total} after {elapsed:.1f} s", flush=True)
            return elapsed
        if elapsed - last_print >= 10:
            phases = Counter((item.get("status") or {}).get("phase", "-") for item in items)
            print(f"  {what}: {finished}/{total} after {elapsed:.0f} s {dict(phases)}", flush=True)
            last_print = elapsed
        time.sleep(POLL_SECONDS)


def run(cluster: LocalCluster, objects: int, log_path: Path) -> None:
    for manifest in sorted((REPO_ROOT / "crds").glob("*.yaml")):
        cluster.kubectl("apply", "--server-side", "-f", str(manifest))
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    cluster.kubectl("create", "namespace", NAMESPACE)
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))  # type: ignore[no-untyped-call]
    custom = client.CustomObjectsApi(api)
    metrics_port = free_port()
    with log_path.open("wb") as log:
        operator = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "modelrollout"),
                "run",
                "--namespace",
                NAMESPACE,
                "--standalone",
                "--metrics-port",
                str(metrics_port),
                "--metrics-address",
                "127.0.0.1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        )
    try:
        names = [f"model-{index:04d}" for index in range(objects)]
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(
                pool.map(
                    lambda name: custom.create_namespaced_custom_object(
                        n.GROUP, n.VERSION, NAMESPACE, n.PLURAL, model_deployment(name, "1")
                    ),
                    names,
                )
            )
        print(f"created {objects} ModelDeployments in {time.monotonic() - started:.1f} s")
        cpu_before, work_before = cpu_seconds(operator.pid), reconciles(metrics_port)
        deploy = wait_all(custom, "Healthy", lambda s: s.get("phase") == "Healthy", objects)
        deploy_cpu = cpu_seconds(operator.pid) - cpu_before
        deploy_work = describe(work_before, reconciles(metrics_port))

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(
                pool.map(
                    lambda name: custom.patch_namespaced_custom_object(
                        n.GROUP, n.VERSION, NAMESPACE, n.PLURAL, name,
                        {"spec": {"model": {"version": "2", "uri": "file:///models/wine-2.skops"}}},
                    ),
                    names,
                )
            )  # fmt: skip
        print(f"patched {objects} to version 2 in {time.monotonic() - started:.1f} s")
        cpu_before, work_before = cpu_seconds(operator.pid), reconciles(metrics_port)
        rollout = wait_all(
            custom,
            "version 2 promoted",
            lambda s: s.get("stableVersion") == "2" and s.get("phase") == "Healthy",
            objects,
        )
        rollout_cpu = cpu_seconds(operator.pid) - cpu_before
        rollout_work = describe(work_before, reconciles(metrics_port))

        time.sleep(SETTLE_SECONDS)
        count_before, cpu_before = reconciles(metrics_port)[0], cpu_seconds(operator.pid)
        time.sleep(IDLE_WINDOW_SECONDS)  # a measurement window, not a wait for a condition
        idle_reconciles = reconciles(metrics_port)[0] - count_before
        idle_cpu = cpu_seconds(operator.pid) - cpu_before
        errors = log_path.read_text(errors="replace").count(" ERROR ")

        print(f"\n{objects} ModelDeployments, 1 replica each, one operator process:")
        print(
            f"  all Healthy after create:        {deploy:7.1f} s"
            f"  (operator CPU {deploy_cpu:.1f} s, {deploy_work})"
        )
        print(
            f"  all promoted after spec change:  {rollout:7.1f} s"
            f"  (operator CPU {rollout_cpu:.1f} s, {rollout_work})"
        )
        print(
            f"  at rest over {IDLE_WINDOW_SECONDS:.0f} s: "
            f"{idle_reconciles / IDLE_WINDOW_SECONDS:.2f} reconciles/s, "
            f"{100 * idle_cpu / IDLE_WINDOW_SECONDS:.1f}% of a core"
        )
        print(f"  operator RSS {rss_mib(operator.pid):.0f} MiB; ERROR lines in its log: {errors}")
    finally:
        operator.send_signal(signal.SIGTERM)
        try:
            operator.wait(timeout=30)
        except subprocess.TimeoutExpired:
            operator.kill()
        api.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument(
        "--controllers-qps",
        type=int,
        default=None,
        help="raise kube-controller-manager's and kube-scheduler's API rate limit "
        "(default: theirs, 20 and 50 queries/s)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the cluster running")
    args = parser.parse_args()
    workdir = REPO_ROOT / ".local" / "kwok-scale"
    cluster = local_cluster("modelrollout-scale", workdir, args.controllers_qps)
    cluster.down(log=lambda _m: None)
    nodes = max(3, -(-2 * args.objects // PODS_PER_NODE) + 1)
    cluster.up(nodes=nodes)
    try:
        print(f"controllers' API rate limit: {args.controllers_qps or 'default'} queries/s")
        run(cluster, args.objects, workdir / "operator.log")
    finally:
        if not args.keep:
            cluster.down(log=lambda _m: None)


if __name__ == "__main__":
    main()
