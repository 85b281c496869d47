"""Measures the local control plane: warm `cluster-up` time (binaries cached) and
idle memory. Prints figures; asserts nothing. Run: `.venv/bin/python benchmarks/cluster_bench.py`.

The cold build time is measured separately, with empty caches:
`MODELROLLOUT_CACHE=$(mktemp -d) GOCACHE=$(mktemp -d) GOMODCACHE=$(mktemp -d) \
    bash -c "time bash tools/cluster/build.sh"`.
"""

from __future__ import annotations

import argparse
import statistics
import time

from modelrollout.devenv.cluster import LocalCluster, local_cluster
from modelrollout.devenv.tools import REPO_ROOT

# Long enough after start-up for the controllers' initial syncs to settle.
IDLE_SETTLE_SECONDS = 60.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cluster: LocalCluster = local_cluster("modelrollout-bench", REPO_ROOT / ".local" / "kwok-bench")
    cluster.down(log=lambda _m: None)
    timings = []
    for run in range(1, args.runs + 1):
        started = time.monotonic()
        cluster.up(log=lambda _m: None)
        timings.append(time.monotonic() - started)
        print(f"run {run}: cluster-up to 3 Ready nodes in {timings[-1]:.2f} s", flush=True)
        if run < args.runs:
            cluster.down(log=lambda _m: None)
    print(
        f"warm cluster-up: median {statistics.median(timings):.2f} s, "
        f"min {min(timings):.2f} s, max {max(timings):.2f} s over {len(timings)} runs"
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
