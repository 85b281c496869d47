"""Blue/green whose new revision fails only once it takes the traffic: the switch
is verified, and traffic goes back to blue while blue is still up at full size.

Nobody calls the preview, so the preview is gated on what needs no traffic (the
model is loaded); the error rate has no data there (onNoData: Ignore). After the
switch green answers every client and fails half of them: the verification
catches it within the scale-down delay and switches `<name>` back to blue,
whose replicas were never reduced.
"""

from __future__ import annotations

import pytest

from modelrollout.api import names as n
from modelrollout.devenv.stack import Artifact, ServingStack
from modelrollout.devenv.traffic import NO_ANSWER
from support.rollouts import Rollouts
from support.serving import (
    ERROR_RATE,
    HALF_FAILING,
    MODEL_LOADED,
    deploy_first_version,
    model_deployment,
    wait_all_traffic_on,
)
from support.waiting import sampled

pytestmark = pytest.mark.e2e

REPLICAS = 2


def test_a_failure_after_the_switch_sends_traffic_back_to_blue_while_it_is_up(
    rollouts: Rollouts, stack: ServingStack, models: dict[str, Artifact]
) -> None:
    strategy = {
        # The delay is the verification window: far longer than detection takes.
        "blueGreen": {"previewReplicas": 1, "autoPromotionSeconds": 0, "scaleDownDelaySeconds": 120}
    }
    body = model_deployment(
        stack,
        "wine",
        models["improved"],
        metrics=[MODEL_LOADED, ERROR_RATE],
        strategy=strategy,
    )
    body["spec"]["analysis"]["onNoData"] = "Ignore"
    clients = deploy_first_version(rollouts, stack, body)
    blue = rollouts.status("wine")["stableRevision"]

    def world() -> tuple[str, int]:
        selected = rollouts.selector("wine").get(n.LABEL_REVISION, "<all revisions>")
        return selected, rollouts.replicas("wine").get(blue, (0, 0))[0]

    with sampled(world) as seen:
        faulty = stack.served_spec(models["improved"], "2", env=HALF_FAILING)
        rollouts.patch_spec("wine", faulty)
        verifying = rollouts.wait_status(
            "wine", "switched and verifying", lambda s: s.get("reason") == "Verifying", timeout=180
        )
        green = verifying["canaryRevision"]
        assert verifying["canaryWeight"] == 100, verifying
        status = rollouts.wait_phase("wine", "Degraded", timeout=120)
        wait_all_traffic_on(rollouts, "wine", blue)

    assert status["reason"] == "RolledBack" and status["stableRevision"] == blue, status
    rollback = status["lastRollback"]
    assert rollback["metric"] == "error-rate" and rollback["revision"] == green, rollback
    assert rollback["value"] > 0.05, rollback
    selected = [revision for revision, _ in seen]
    assert green in selected, "the main Service never switched to green"
    # The end state, read now: the last background sample may predate the switch
    # back by a poll or two (the operator routes, then writes status, and the
    # endpoints follow within a second).
    assert rollouts.selector("wine")[n.LABEL_REVISION] == blue, selected[-5:]
    assert min(replicas for _, replicas in seen) == REPLICAS, "blue was scaled down"
    answered = clients.stats()
    assert answered["2"].codes["500"] > 0, f"green never answered clients: {answered}"
    assert answered["1"].failed == 0, answered["1"]
    assert NO_ANSWER not in answered, f"requests nobody answered: {answered[NO_ANSWER].codes}"
