"""Blue/green whose preview fails analysis: the switch never happens.

Green is previewed behind `<name>-preview`, which gets its own traffic (the
analysis needs something to measure); clients keep calling `<name>`. Green
fails half of its requests, so the analysis fails during the preview and the
rollout is rolled back: the main Service's selector never pointed at green,
and no client request on it was ever answered by green.
"""

from __future__ import annotations

import pytest

from modelrollout.api import names as n
from modelrollout.devenv.stack import Artifact, ServingStack
from modelrollout.devenv.traffic import NO_ANSWER
from support.rollouts import Rollouts
from support.serving import ERROR_RATE, HALF_FAILING, RATE, deploy_first_version, model_deployment
from support.waiting import sampled

pytestmark = pytest.mark.e2e


def test_a_preview_that_fails_analysis_is_never_switched_to(
    rollouts: Rollouts, stack: ServingStack, models: dict[str, Artifact]
) -> None:
    strategy = {
        # Long enough that only a failed analysis, never the timer, ends the preview.
        "blueGreen": {"previewReplicas": 1, "autoPromotionSeconds": 120, "scaleDownDelaySeconds": 0}
    }
    body = model_deployment(
        stack,
        "wine",
        models["improved"],
        metrics=[ERROR_RATE],
        strategy=strategy,
    )
    clients = deploy_first_version(rollouts, stack, body)
    blue = rollouts.status("wine")["stableRevision"]
    stack.traffic(rollouts.namespace, "wine-preview", rate=RATE / 2, seed=1)

    def selected_revision() -> str:
        return rollouts.selector("wine").get(n.LABEL_REVISION, "<all revisions>")

    with sampled(selected_revision) as selected:
        faulty = stack.served_spec(models["improved"], "2", env=HALF_FAILING)
        rollouts.patch_spec("wine", faulty)
        green = rollouts.wait_status("wine", "green previewed", lambda s: s.get("canaryRevision"))[
            "canaryRevision"
        ]
        status = rollouts.wait_phase("wine", "Degraded", timeout=180)

    assert status["reason"] == "RolledBack" and status["stableRevision"] == blue, status
    assert status["lastRollback"]["metric"] == "error-rate", status["lastRollback"]
    assert green not in selected and blue in selected, set(selected)
    assert rollouts.selector("wine")[n.LABEL_REVISION] == blue
    answered = clients.stats()
    assert "2" not in answered, f"a client of the main Service reached green: {answered}"
    assert answered["1"].failed == 0, answered["1"]
    assert NO_ANSWER not in answered, f"requests nobody answered: {answered[NO_ANSWER].codes}"
