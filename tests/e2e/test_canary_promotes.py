"""A better model is canaried with analysis on real servers and promoted.

v1 (the baseline tree) serves; v2 (the improved pipeline) goes through every
canary step while real model servers answer real traffic through the Service,
Prometheus scrapes them, and the operator measures error rate, input drift and
accuracy from labelled feedback against the stable revision. All pass: promoted.
"""

from __future__ import annotations

from typing import Any

import pytest

from modelrollout.devenv.stack import Artifact, ServingStack
from modelrollout.devenv.traffic import NO_ANSWER
from support.rollouts import Rollouts
from support.serving import (
    ACCURACY_VS_STABLE,
    DRIFT,
    ERROR_RATE,
    RATE,
    model_deployment,
)
from support.waiting import wait_for

pytestmark = pytest.mark.e2e

STEPS = [{"setWeight": 50}, {"pause": {"duration": "4s"}}]


def test_a_better_model_walks_every_canary_step_and_is_promoted(
    rollouts: Rollouts, stack: ServingStack, models: dict[str, Artifact]
) -> None:
    body = model_deployment(
        stack,
        "wine",
        models["baseline"],
        metrics=[ERROR_RATE, DRIFT, ACCURACY_VS_STABLE],
        strategy={"canary": {"steps": STEPS}},
    )
    rollouts.create(body)
    rollouts.wait_phase("wine", "Healthy")
    traffic = stack.traffic(rollouts.namespace, "wine", rate=RATE, feedback_share=0.5)
    wait_for(lambda: traffic.stats().get("1"), timeout=60, what="v1 answering traffic")

    rollouts.patch_spec("wine", stack.served_spec(models["improved"], "2"))
    # Replica ratio is the weight: with one pod each, both versions answer.
    wait_for(
        lambda: min(traffic.shares().get(v, 0.0) for v in ("1", "2")) > 0.2,
        timeout=90,
        what="traffic shared between v1 and v2 at weight 50",
    )
    steps_seen: set[int] = set()

    def promoted(status: dict[str, Any]) -> bool:
        if status.get("canaryVersion") == "2":
            steps_seen.add(int(status.get("currentStep") or 0))
        return bool(status.get("stableVersion") == "2" and status.get("phase") == "Healthy")

    status = rollouts.wait_status("wine", "v2 promoted", promoted, timeout=180)
    assert steps_seen >= {1}, steps_seen
    for metric in ("error-rate", "feature-drift", "accuracy-vs-stable"):
        assert status["analysis"][metric]["failures"] == 0, status["analysis"]
        assert status["analysis"][metric]["successes"] >= 1, status["analysis"]
    assert status["history"][0]["version"] == "2"
    answered = traffic.stats()
    assert answered["2"].failed == 0 and answered["2"].answered > 0, answered
    assert answered["1"].failed == 0, answered
    assert NO_ANSWER not in answered, f"requests nobody answered: {answered[NO_ANSWER].codes}"
