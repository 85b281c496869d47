"""spec.progressDeadlineSeconds with the real operator, scheduler and ReplicaSets:
a new revision whose pods cannot be scheduled (a nodeSelector no node has) is
stopped at its deadline, naming the scheduler's message; stable keeps serving.

KWOK's pods become ready whatever their probes or image say, so the cause here is
the one the real scheduler gives; the other causes (image pulls, crash loops,
probes) are read from real-looking pods by tests/unit/kube/test_pods.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from modelrollout.api import names as n
from support.operator import OperatorProcess
from support.rollouts import Rollouts, plain_canary
from support.waiting import sampled

pytestmark = pytest.mark.integration

NOWHERE = {"template": {"spec": {"nodeSelector": {"modelrollout.io/test-node": "nowhere"}}}}
DEADLINE = 8
UNSCHEDULABLE = "pods unschedulable: 0/"


@pytest.fixture
def rollouts(operator: OperatorProcess, namespace: str) -> Iterator[Rollouts]:
    yield Rollouts(operator.cluster, namespace)


def canary(name: str, **spec: Any) -> dict[str, Any]:
    body = plain_canary(name, [{"setWeight": 25}, {"pause": {}}])
    body["spec"].update(progressDeadlineSeconds=DEADLINE, **spec)
    return body


def test_unschedulable_canary_is_rolled_back_at_its_deadline_naming_the_scheduler(
    rollouts: Rollouts,
) -> None:
    rollouts.create(canary("fraud"))
    stable = rollouts.wait_phase("fraud", "Healthy")["stableRevision"]
    with sampled(lambda: rollouts.replicas("fraud").get(stable, (0, 0))) as stable_sizes:
        rollouts.patch_spec("fraud", {"model": {"version": "2"}, **NOWHERE})
        waiting = rollouts.wait_status(
            "fraud", "waiting on the canary's deadline", lambda s: "readinessWait" in s
        )
        status = rollouts.wait_status(
            "fraud",
            "rolled back for the progress deadline",
            lambda s: s.get("lastRollback", {}).get("reason") == "ProgressDeadlineExceeded",
        )
    new = waiting["canaryRevision"]
    assert (status["phase"], status["reason"]) == ("Degraded", "ProgressDeadlineExceeded")
    assert f"progress deadline ({DEADLINE}s) exceeded with 0/1 pods available" in status["message"]
    assert UNSCHEDULABLE in status["message"], status["message"]
    rollback = status["lastRollback"]
    assert (rollback["revision"], rollback["version"]) == (new, "2")
    assert UNSCHEDULABLE in rollback["message"]
    assert status["hold"]["reason"] == "ProgressDeadlineExceeded"
    assert status["stableRevision"] == stable
    assert rollouts.selector("fraud") == {n.LABEL_DEPLOYMENT: "fraud", n.LABEL_REVISION: stable}
    assert rollouts.replicas("fraud")[new][0] == 0, "the canary is scaled away"
    assert stable_sizes and all(size == (4, 4) for size in stable_sizes), (
        f"stable lost capacity: {sorted(set(stable_sizes))}"
    )


def test_without_automatic_rollback_it_holds_degraded_and_status_names_the_cause(
    rollouts: Rollouts,
) -> None:
    rollouts.create(canary("held", rollback={"automatic": False}))
    stable = rollouts.wait_phase("held", "Healthy")["stableRevision"]
    rollouts.patch_spec("held", {"model": {"version": "2"}, **NOWHERE})
    status = rollouts.wait_status(
        "held", "held for the progress deadline",
        lambda s: s.get("reason") == "ProgressDeadlineExceeded",
    )  # fmt: skip
    new = status["canaryRevision"]
    assert status["phase"] == "Degraded"
    assert status["readinessWait"]["exceededAt"]
    assert "rollback.automatic is off" in status["message"]
    assert "lastRollback" not in status
    assert rollouts.selector("held") == {n.LABEL_DEPLOYMENT: "held", n.LABEL_REVISION: stable}
    assert rollouts.replicas("held")[stable] == (4, 4)
    shown = rollouts.cli("status", "held").stdout
    pods = next(line for line in shown.splitlines() if line.startswith("Pods:"))
    assert pods.startswith(f"Pods:      canary pods 0/1 ready: {UNSCHEDULABLE}"), shown
    deadline = next(line for line in shown.splitlines() if line.startswith("Deadline:"))
    assert deadline.startswith("Deadline:  progress deadline exceeded at"), shown
    # The user acts: `abort` rolls back and holds the revision.
    rollouts.cli("abort", "held")
    status = rollouts.wait_status(
        "held", "aborted", lambda s: s.get("hold", {}).get("reason") == "Aborted"
    )
    assert "canaryRevision" not in status and "readinessWait" not in status
    assert rollouts.replicas("held")[new][0] == 0


def test_first_revision_that_cannot_be_scheduled_is_degraded_then_fixed_by_the_spec(
    rollouts: Rollouts,
) -> None:
    body = canary("first")
    body["spec"]["template"]["spec"]["nodeSelector"].update(
        NOWHERE["template"]["spec"]["nodeSelector"]
    )
    rollouts.create(body)
    status = rollouts.wait_status(
        "first", "Degraded at the deadline", lambda s: s.get("phase") == "Degraded"
    )
    assert status["reason"] == "ProgressDeadlineExceeded"
    assert "no stable revision to roll back to" in status["message"]
    assert UNSCHEDULABLE in status["message"]
    # A JSON merge patch with null removes the key no node has (the one that keeps the
    # pods on the simulated nodes stays): a new revision, deployed.
    unselect = dict.fromkeys(NOWHERE["template"]["spec"]["nodeSelector"])
    rollouts.patch_spec("first", {"template": {"spec": {"nodeSelector": unselect}}})
    status = rollouts.wait_phase("first", "Healthy")
    assert "readinessWait" not in status
    assert status["stableVersion"] == "1"
