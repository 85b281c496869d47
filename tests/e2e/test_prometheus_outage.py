"""Prometheus stops in the middle of a canary's analysis: the rollout pauses,
never promotes blind, and continues by itself when Prometheus is back (same
address, same storage, as a restarted Prometheus pod behind its Service)."""

from __future__ import annotations

import pytest

from modelrollout.devenv.stack import Artifact, ServingStack
from support.rollouts import Rollouts
from support.serving import ERROR_RATE, deploy_first_version, model_deployment

pytestmark = pytest.mark.e2e

# The pause is where Prometheus goes away: long enough to stop it inside the step.
STEPS = [{"setWeight": 50}, {"pause": {"duration": "10s"}}, {"setWeight": 100}]
PAUSED_REASONS = {"AnalysisUnavailable", "AnalysisNoData"}


def test_a_rollout_pauses_while_prometheus_is_down_and_is_promoted_once_it_is_back(
    rollouts: Rollouts, stack: ServingStack, models: dict[str, Artifact]
) -> None:
    body = model_deployment(
        stack,
        "wine",
        models["baseline"],
        metrics=[ERROR_RATE],
        strategy={"canary": {"steps": STEPS}},
    )
    deploy_first_version(rollouts, stack, body)
    rollouts.patch_spec("wine", stack.served_spec(models["improved"], "2"))
    rollouts.wait_status(
        "wine", "the first step passed", lambda s: s.get("currentStep", 0) >= 1, timeout=120
    )

    stack.stop_prometheus()
    status = rollouts.wait_status(
        "wine", "paused on analysis", lambda s: s.get("reason") in PAUSED_REASONS, timeout=60
    )
    assert status["phase"] == "Paused", status
    assert "cannot reach Prometheus" in status["message"] or "no data" in status["message"]
    errors = status["analysis"]["error-rate"]["consecutiveErrors"]
    held = rollouts.wait_status(
        "wine",
        "more failed measurements, still paused",
        lambda s: s["analysis"]["error-rate"]["consecutiveErrors"] >= errors + 2,
        timeout=60,
    )
    assert held["phase"] == "Paused", held
    assert held["stableVersion"] == "1" and held["canaryVersion"] == "2", "not promoted blind"

    stack.start_prometheus()
    status = rollouts.wait_status(
        "wine", "promoted after Prometheus is back",
        lambda s: s.get("stableVersion") == "2" and s.get("phase") == "Healthy", timeout=180,
    )  # fmt: skip
    assert status["analysis"]["error-rate"]["verdict"] == "pass"
