"""Two operator replicas with Kopf peering: only the highest-priority one acts,
and the other takes over when it dies (the Helm chart runs 2 replicas)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from modelrollout.api import names as n
from support.kube import ClusterUnderTest
from support.operator import OperatorProcess
from support.rollouts import Rollouts, plain_canary
from support.waiting import wait_for

pytestmark = pytest.mark.integration

PEERING = "modelrollout"
# Short, so the standby takes over within seconds of the leader's death
# (Kopf's and the operator's default is 60 s).
LIFETIME_SECONDS = 15
# Kopf starts every replica paused and says this when one becomes the acting one.
ACTING = "Resuming operations after the pause"


def replica(kube: ClusterUnderTest, namespace: str, log: Path, priority: int) -> OperatorProcess:
    return OperatorProcess(
        kube,
        namespace,
        log,
        options=("--priority", str(priority)),
        env={"MODELROLLOUT_PEERING_LIFETIME_SECONDS": str(LIFETIME_SECONDS)},
    )


@pytest.fixture
def replicas(
    crds: ClusterUnderTest, namespace: str, tmp_path: Path
) -> Iterator[tuple[OperatorProcess, OperatorProcess]]:
    client.CustomObjectsApi(crds.api).create_namespaced_custom_object(
        "kopf.dev", "v1", namespace, "kopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": PEERING}},
    )  # fmt: skip
    leader = replica(crds, namespace, tmp_path / "leader.log", priority=200)
    standby = replica(crds, namespace, tmp_path / "standby.log", priority=100)
    try:
        yield leader, standby
    finally:
        for process in (leader, standby):
            process.stop()
            print(f"--- {process.log_path.name} ---\n{process.log()[-6000:]}")


def peers(kube: ClusterUnderTest, namespace: str) -> dict[str, Any]:
    body = client.CustomObjectsApi(kube.api).get_namespaced_custom_object(
        "kopf.dev", "v1", namespace, "kopfpeerings", PEERING
    )
    return dict(body.get("status") or {})


def acted_on(process: OperatorProcess, namespace: str, name: str) -> bool:
    """The operator logs each status it writes as `<ns>/<name> <Reason>: ...`."""
    return f"{namespace}/{name} " in process.log()


def test_only_the_leader_acts_and_the_standby_takes_over_when_it_dies(
    replicas: tuple[OperatorProcess, OperatorProcess], namespace: str, crds: ClusterUnderTest
) -> None:
    leader, standby = replicas
    leader.start()
    wait_for(lambda: ACTING in leader.log(), timeout=60, what="the leader acting")
    standby.start()
    wait_for(lambda: len(peers(crds, namespace)) == 2, timeout=60, what="both peering records")

    rollouts = Rollouts(crds, namespace)
    rollouts.create(plain_canary("peered", [{"setWeight": 50}], replicas=2))
    first = rollouts.wait_phase("peered", "Healthy")
    assert acted_on(leader, namespace, "peered")
    assert not acted_on(standby, namespace, "peered"), "the paused standby acted too"
    assert ACTING not in standby.log(), "the standby resumed while the leader lives"

    leader.kill()  # no goodbye: its record must expire
    wait_for(
        lambda: ACTING in standby.log(),
        timeout=LIFETIME_SECONDS + 60,
        what="the standby taking over once the leader's record expired",
    )
    rollouts.patch_spec("peered", {"model": {"version": "2"}})
    status = rollouts.wait_status(
        "peered", "version 2 rolled out by the standby",
        lambda s: s.get("stableVersion") == "2" and s.get("phase") == "Healthy",
        timeout=LIFETIME_SECONDS + 90,
    )  # fmt: skip
    assert acted_on(standby, namespace, "peered")
    assert [h["version"] for h in status["history"]] == ["2", first["stableVersion"]]
    assert rollouts.selector("peered")[n.LABEL_REVISION] == status["stableRevision"]
