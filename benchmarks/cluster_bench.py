"""Measures the local cluster: warm `cluster-up` time (binaries and images cached)
to a Ready real node and 3 simulated ones, how long a real pod takes from creation
to Ready (a small HTTP server, and a model server downloading its artifact over
HTTP), and idle memory. Prints figures; asserts nothing.
Run: `.venv/bin/python benchmarks/cluster_bench.py`.

The cold build time is measured separately, with empty caches:
`MODELROLLOUT_CACHE=$(mktemp -d) GOCACHE=$(mktemp -d) GOMODCACHE=$(mktemp -d) \
    bash -c "time bash tools/cluster/build.sh"`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from kubernetes import client, config

from modelrollout.devenv.cluster import LocalCluster, local_cluster
from modelrollout.devenv.tools import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tests"))
# The pod template and artifact store the demo and the tests use, measured as they are.
from modelrollout.devenv.artifacts import ArtifactStore
from modelrollout.devenv.stack import Artifact, model_server_template, train_variants
from support.realnode import python_pod

# Long enough after start-up for the controllers' initial syncs to settle.
IDLE_SETTLE_SECONDS = 60.0
POD_READY_TIMEOUT_SECONDS = 120.0


class _Cluster:
    """What support.realnode.python_pod reads of the tests' cluster handle."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster


def model_server_pod(
    cluster: LocalCluster, name: str, artifact: Artifact, uri: str
) -> dict[str, object]:
    """The model-server pod template, with the env the operator would inject."""
    assert cluster.node_images is not None
    template = model_server_template(cluster.node_images.workload, artifact)
    model_env = {"MODEL_NAME": "wine", "MODEL_VERSION": "1", "MODEL_URI": uri,
                 "MODEL_SHA256": artifact.sha256}  # fmt: skip
    container = template["spec"]["containers"][0]
    container["env"] += [{"name": k, "value": v} for k, v in model_env.items()]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, **template}


def pod_start_to_ready(cluster: LocalCluster, runs: int, make_pod: object = None) -> list[float]:
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    core = client.CoreV1Api(api)
    timings = []
    for run in range(runs):
        name = f"bench-{run}"
        started = time.monotonic()
        body = make_pod(name) if callable(make_pod) else python_pod(_Cluster(cluster), name)  # type: ignore[arg-type]
        core.create_namespaced_pod("default", body)
        deadline = started + POD_READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            pod = core.read_namespaced_pod(name, "default")
            if any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []):
                break
            time.sleep(0.1)  # polling interval of the measurement, not a wait for a condition
        else:
            raise SystemExit(f"pod {name} not Ready within {POD_READY_TIMEOUT_SECONDS:.0f} s")
        timings.append(time.monotonic() - started)
        core.delete_namespaced_pod(name, "default", grace_period_seconds=0)
    api.close()
    return timings


def summary(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):.2f} s, min {min(values):.2f} s, "
        f"max {max(values):.2f} s over {len(values)} runs"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cluster = local_cluster("modelrollout-bench", REPO_ROOT / ".local" / "kwok-bench")
    cluster.down(log=lambda _m: None)
    timings, node_lines = [], []
    for run in range(1, args.runs + 1):
        started = time.monotonic()
        cluster.up(log=lambda m: node_lines.append(m) if "imported" in m else None)
        timings.append(time.monotonic() - started)
        print(f"run {run}: cluster-up to a Ready real node and 3 simulated ones in "
              f"{timings[-1]:.2f} s ({node_lines[-1]})", flush=True)  # fmt: skip
        if run < args.runs:
            cluster.down(log=lambda _m: None)
    print(f"warm cluster-up: {summary(timings)}")
    pods = pod_start_to_ready(cluster, args.runs)
    print(f"real pod (model-server image, 1 s readiness probe) created to Ready: {summary(pods)}")
    models = train_variants(Path(tempfile.mkdtemp()), variants=("improved",))
    improved = models["improved"]
    with ArtifactStore(Path(tempfile.mkdtemp()), cluster.network) as store:
        uri = store.publish(Path(urlsplit(improved.uri).path))
        servers = pod_start_to_ready(
            cluster, args.runs, lambda name: model_server_pod(cluster, name, improved, uri)
        )
    print(
        f"model server pod (artifact over HTTP, wine improved) created to Ready: {summary(servers)}"
    )
    time.sleep(IDLE_SETTLE_SECONDS)  # a measurement window, not a wait for a condition
    memory = cluster.component_memory()
    for component, rss in memory.items():
        print(f"idle RSS {component:<24} {rss / 2**20:7.1f} MiB")
    print(
        f"idle RSS total {sum(memory.values()) / 2**20:.1f} MiB after {IDLE_SETTLE_SECONDS:.0f} s"
    )
    cluster.down(log=lambda _m: None)


if __name__ == "__main__":
    main()
