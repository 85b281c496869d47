"""Blue/green whose preview fails analysis: the switch never happens.

Green is previewed behind `<name>-preview`, which gets its own traffic (the
analysis needs something to measure); clients keep calling `<name>`. Green
fails half of its requests, so the analysis fails during the preview and the
rollout is rolled back: the main Service's selector never pointed at green,
and no client request on it was ever answered by green.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from modelrollout.api import names as n
from modelrollout.devenv.stack import Artifact, ServingStack
from support.rollouts import Rollouts
from support.serving import ERROR_RATE, RATE, deploy_first_version, model_deployment, served_spec

pytestmark = pytest.mark.e2e

SELECTOR_POLL_SECONDS = 0.2


@contextmanager
def selector_history(rollouts: Rollouts, service: str) -> Iterator[set[str]]:
    """Every revision the Service's selector named while the block ran."""
    seen: set[str] = set()
    done = threading.Event()

    def poll() -> None:
        while not done.wait(SELECTOR_POLL_SECONDS):
            seen.add(rollouts.selector(service).get(n.LABEL_REVISION, "<all revisions>"))

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        done.set()
        thread.join(timeout=10)


def test_a_preview_that_fails_analysis_is_never_switched_to(
    rollouts: Rollouts, stack: ServingStack, models: dict[str, Artifact]
) -> None:
    strategy = {
        # Long enough that only a failed analysis, never the timer, ends the preview.
        "blueGreen": {"previewReplicas": 1, "autoPromotionSeconds": 120, "scaleDownDelaySeconds": 0}
    }
    body = model_deployment(
        "wine",
        models["improved"],
        prometheus=stack.prometheus.url,
        metrics=[ERROR_RATE],
        strategy=strategy,
    )
    clients = deploy_first_version(rollouts, stack, body)
    blue = rollouts.status("wine")["stableRevision"]
    stack.traffic(rollouts.namespace, "wine-preview", rate=RATE / 2, seed=1)

    with selector_history(rollouts, "wine") as selected:
        faulty = served_spec(models["improved"], "2", env={"MODELSERVER_FAULT_ERROR_RATE": "0.5"})
        rollouts.patch_spec("wine", faulty)
        green = rollouts.wait_status("wine", "green previewed", lambda s: s.get("canaryRevision"))[
            "canaryRevision"
        ]
        status = rollouts.wait_phase("wine", "Degraded", timeout=180)

    assert status["reason"] == "RolledBack" and status["stableRevision"] == blue, status
    assert status["lastRollback"]["metric"] == "error-rate", status["lastRollback"]
    assert green not in selected and blue in selected, selected
    assert rollouts.selector("wine")[n.LABEL_REVISION] == blue
    answered = clients.stats()
    assert "2" not in answered, f"a client of the main Service reached green: {answered}"
    assert answered["1"].failed == 0, answered["1"]
