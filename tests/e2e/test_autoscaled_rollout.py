"""A real HPA on CPU scaling a ModelDeployment while a canary runs on real pods.

metrics-server (built from its module) reads the real node's kubelet; the HPA is
the one spec.autoscaling makes, acted on by the real kube-controller-manager
through the ModelDeployment's scale subresource; the load is real requests to
the Service's ClusterIP. Load rises while the canary waits at 50%: the HPA scales
the total up, both revisions grow, the step stays where it was, and no revision's
pod count turns back while the total only grew (sampled every second). After
`promote` the load falls and the HPA scales down again.

The controller-manager looks every 5 s and scales down after 30 s of lower
recommendations (the local cluster's flags; the defaults are 15 s and 5 min).
"""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelrollout.devenv.metrics_server import LocalMetricsServer, start_metrics_server
from modelrollout.devenv.stack import Artifact, ServingStack
from support.kube import ClusterUnderTest
from support.rollouts import Rollouts
from support.serving import model_deployment
from support.waiting import sampled, wait_for

pytestmark = pytest.mark.e2e

# Small CPU requests, so a few dozen requests a second are well above the target.
CPU_REQUEST = "50m"
AUTOSCALING = {
    "minReplicas": 2,
    "maxReplicas": 6,
    "metrics": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                    "averageUtilization": 50}}}
    ],
}  # fmt: skip
QUIET_RATE, LOAD_RATE = 2.0, 60.0
SCALE_UP_SECONDS, SCALE_DOWN_SECONDS = 240, 240


@pytest.fixture
def metrics_server(kube: ClusterUnderTest, tmp_path: Path) -> Iterator[LocalMetricsServer]:
    server = start_metrics_server(kube.cluster, tmp_path / "metrics-server")
    yield server
    server.stop()


def with_cpu_request(spec: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    for container in spec["template"]["spec"]["containers"]:
        container["resources"] = {"requests": {"cpu": CPU_REQUEST}}
    return spec


def reversals(samples: list[tuple[int, dict[str, int]]]) -> int:
    """The largest drop of a revision's pod count while the total did not drop (the
    HPA only scaled up meanwhile): a count given back within one scaling event."""
    worst = 0
    for (total_before, before), (total_after, after) in itertools.pairwise(samples):
        if total_after < total_before:
            continue  # the HPA's own decision
        for revision, count in before.items():
            worst = max(worst, count - after.get(revision, 0))
    return worst


def test_the_hpa_scales_a_running_canary_with_no_reversal_and_scales_down_after_it(
    rollouts: Rollouts,
    models: dict[str, Artifact],
    stack: ServingStack,
    metrics_server: LocalMetricsServer,
) -> None:
    body = model_deployment(
        stack,
        "wine",
        models["baseline"],
        metrics=[],
        strategy={"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}},
        replicas=2,
    )
    body["spec"].pop("analysis")
    body["spec"] = {**with_cpu_request(body["spec"]), "autoscaling": AUTOSCALING}
    rollouts.create(body)
    rollouts.wait_phase("wine", "Healthy", timeout=180)
    quiet = stack.traffic(rollouts.namespace, "wine", rate=QUIET_RATE)
    wait_for(lambda: quiet.stats().get("1"), timeout=60, what="v1 answering")

    rollouts.patch_spec("wine", with_cpu_request(stack.served_spec(models["improved"], "2")))
    paused = rollouts.wait_status(
        "wine", "v2 at its pause", lambda s: s.get("phase") == "Paused", timeout=180
    )
    step, started = paused["currentStep"], paused["stepStartedAt"]
    stable, canary = paused["stableRevision"], paused["canaryRevision"]

    def sample() -> tuple[int, dict[str, int]]:
        total = int(rollouts.get("wine")["spec"]["replicas"])
        return total, {rev: spec for rev, (spec, _) in rollouts.replicas("wine").items()}

    with sampled(sample, interval=1.0) as samples:
        load_started = time.monotonic()
        load = stack.traffic(rollouts.namespace, "wine", rate=LOAD_RATE, concurrency=16)

        def grown() -> dict[str, tuple[int, int]] | None:
            total = int(rollouts.get("wine")["spec"]["replicas"])
            counts = rollouts.replicas("wine")
            ready = sum(r for _, r in counts.values())
            both = counts.get(stable, (0, 0))[1] > 1 and counts.get(canary, (0, 0))[1] > 1
            return counts if total > 2 and ready >= total and both else None

        counts = wait_for(grown, timeout=SCALE_UP_SECONDS, what="the HPA scaling both revisions")
        reaction = time.monotonic() - load_started
        status = rollouts.status("wine")
        assert (status["currentStep"], status["stepStartedAt"]) == (step, started)
        assert status["phase"] == "Paused", "scaling neither ends nor restarts the pause"
        total = sum(spec for spec, _ in counts.values())
        assert counts[canary][0] == -(-total // 2), "the canary keeps its half of the total"
        assert status["replicas"] == total and canary in status["selector"]
        cpu = metrics_server.pod_cpu(rollouts.namespace)
    worst = reversals(list(samples))
    assert worst == 0, f"a revision gave back pods while the total only grew: {list(samples)}"

    load.stop()
    rollouts.cli("promote", "wine")
    rollouts.wait_status(
        "wine",
        "v2 promoted",
        lambda s: s.get("stableVersion") == "2" and s.get("phase") == "Healthy",
    )
    peak = int(rollouts.get("wine")["spec"]["replicas"])
    load_ended = time.monotonic()
    lower = wait_for(
        lambda: (now := int(rollouts.get("wine")["spec"]["replicas"])) < peak and now,
        timeout=SCALE_DOWN_SECONDS,
        what="the HPA scaling down once the load fell",
    )
    scaled_down = time.monotonic() - load_ended
    print(
        f"\n[figure] autoscaling: load {QUIET_RATE:g} -> {LOAD_RATE:g} req/s during a 50% canary; "
        f"the HPA took the total from 2 to {total} and both revisions were serving at the new "
        f"split {reaction:.0f} s after the load rose; largest pod-count reversal {worst} over "
        f"{len(samples)} one-second samples; pod CPU then "
        f"{sorted(round(c * 1000) for c in cpu.values())} millicores; after promotion and the "
        f"load's end, scaled down from {peak} to {lower} in {scaled_down:.0f} s (30 s of it the "
        "HPA's stabilization window)"
    )
