"""Bad models are rolled back automatically, on real metrics from real servers.

Each test deploys v1, sends traffic through the Service (the replica ratio is
the canary weight), then rolls out a v2 that is bad in one way: it fails
requests, its training data no longer matches live data, or it is less
accurate than the champion on labelled feedback. The canary step waits for
`promote` forever, so only the analysis can end the rollout: it must roll back,
name the metric and value that condemned v2, and leave all traffic on v1.
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
    HALF_FAILING,
    deploy_first_version,
    model_deployment,
    wait_all_traffic_on,
)

pytestmark = pytest.mark.e2e

# No duration: only the analysis (or a person) can end this step.
STEPS = [{"setWeight": 50}, {"pause": {}}]
# Longest pause between two successful answers of the stable version that still
# counts as "never stopped serving": at 30 req/s a gap of 2 s is 60 lost requests.
STABLE_GAP_SECONDS = 2.0


def rolled_back(rollouts: Rollouts, name: str) -> dict[str, Any]:
    status = rollouts.wait_phase(name, "Degraded", timeout=180)
    assert status["reason"] == "RolledBack", status
    assert status["stableVersion"] == "1" and "canaryVersion" not in status, status
    wait_all_traffic_on(rollouts, name, status["stableRevision"])
    return status


def test_a_model_that_fails_requests_is_rolled_back_and_stable_never_stops_serving(
    rollouts: Rollouts, stack: ServingStack, models: dict[str, Artifact]
) -> None:
    body = model_deployment(
        stack,
        "wine",
        models["improved"],
        metrics=[ERROR_RATE],
        strategy={"canary": {"steps": STEPS}},
    )
    traffic = deploy_first_version(rollouts, stack, body)
    # Declared in the manifest, as a user would: half of v2's inferences answer 500.
    faulty = stack.served_spec(models["improved"], "2", env=HALF_FAILING)
    rollouts.patch_spec("wine", faulty)

    status = rolled_back(rollouts, "wine")
    rollback = status["lastRollback"]
    assert rollback["metric"] == "error-rate" and rollback["version"] == "2", rollback
    assert rollback["value"] > 0.05 and rollback["threshold"] == "max 0.05", rollback
    answered = traffic.stats()
    assert answered["2"].codes["500"] > 0, "v2 really served, and failed"
    stable = answered["1"]
    assert stable.failed == 0, f"the stable version failed requests: {stable.codes}"
    assert NO_ANSWER not in answered, f"requests nobody answered: {answered[NO_ANSWER].codes}"
    assert stable.longest_ok_gap < STABLE_GAP_SECONDS, stable


def test_a_model_whose_training_data_no_longer_matches_live_data_is_rolled_back_for_drift(
    rollouts: Rollouts, stack: ServingStack, models: dict[str, Artifact]
) -> None:
    body = model_deployment(
        stack,
        "wine",
        models["improved"],
        metrics=[ERROR_RATE, DRIFT],
        strategy={"canary": {"steps": STEPS}},
    )
    deploy_first_version(rollouts, stack, body)
    # Trained on the lower half of one feature: ordinary live data looks drifted to it.
    rollouts.patch_spec("wine", stack.served_spec(models["shifted"], "2"))

    status = rolled_back(rollouts, "wine")
    rollback = status["lastRollback"]
    assert rollback["metric"] == "feature-drift" and rollback["version"] == "2", rollback
    assert rollback["value"] > 0.25 and rollback["threshold"] == "max 0.25", rollback
    assert status["analysis"]["error-rate"]["failures"] == 0, "it failed on drift alone"


def test_a_challenger_less_accurate_than_the_champion_on_feedback_is_rolled_back(
    rollouts: Rollouts, stack: ServingStack, models: dict[str, Artifact]
) -> None:
    body = model_deployment(
        stack,
        "wine",
        models["improved"],
        metrics=[ACCURACY_VS_STABLE],
        strategy={"canary": {"steps": STEPS}},
    )
    # Half of the answers get their true label back, from the test's held data.
    traffic = deploy_first_version(rollouts, stack, body, feedback_share=0.5)
    # The labelling bug: inputs look normal, only feedback shows it is worse.
    rollouts.patch_spec("wine", stack.served_spec(models["degraded"], "2"))

    status = rolled_back(rollouts, "wine")
    rollback = status["lastRollback"]
    assert rollback["metric"] == "accuracy-vs-stable" and rollback["version"] == "2", rollback
    assert "maxDecrease 0.05" in rollback["threshold"], rollback
    feedback = traffic.stats()
    assert feedback["1"].feedback["200"] > 0 and feedback["2"].feedback["200"] > 0, feedback
    print(f"\n[e2e] challenger rolled back: {rollback}")
