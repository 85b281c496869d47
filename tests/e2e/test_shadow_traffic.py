"""Shadow steps on real pods: the stable's model servers copy live requests to the
challenger and compare its answers; a challenger that disagrees is rejected
before any client sees one of its answers, and one that agrees goes on to its
weighted steps.

The clients are the load generator's, sending to the Service's ClusterIP
through kube-proxy; what they received is judged by the model version each
answer names. The comparison is the stable servers' own
(modelserver_shadow_agreement_ratio), scraped by the stack's Prometheus, and
`kubectl modelrollout status` shows the champion pods' figures while it runs.
"""

from __future__ import annotations

import itertools
import re

import pytest

from modelrollout.devenv.stack import SHADOW_AGREEMENT_QUERY, Artifact, ServingStack
from support.rollouts import Rollouts
from support.serving import deploy_first_version, model_deployment
from support.waiting import WaitTimeoutError, wait_for

pytestmark = pytest.mark.e2e

AGREEMENT = {"name": "agreement", "query": SHADOW_AGREEMENT_QUERY, "min": 0.97, "shadow": True}
STEPS = [
    {"shadow": {"percent": 100, "duration": "10s"}},
    {"setWeight": 50},
    {"pause": {"duration": "2s"}},
]


def shadow_block_with_copies(text: str) -> str | None:
    """The Shadow block of `status` once it counts compared copies and an agreement."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Shadow:")), None)
    if start is None:
        return None
    block = [lines[start]]
    block += itertools.takewhile(lambda line: line.startswith("           "), lines[start + 1 :])
    shown = "\n".join(block)
    copies = re.search(r"copies: (\d+) compared", shown)
    return shown if copies and int(copies[1]) > 0 and "agreement:" in shown else None


def test_a_disagreeing_challenger_is_rejected_in_shadow_unseen_and_an_agreeing_one_goes_on(
    rollouts: Rollouts, models: dict[str, Artifact], stack: ServingStack
) -> None:
    body = model_deployment(
        stack,
        "wine",
        models["baseline"],
        metrics=[AGREEMENT],
        strategy={"canary": {"steps": STEPS}},
        failure_limit=0,
    )
    traffic = deploy_first_version(rollouts, stack, body)

    rollouts.patch_spec("wine", stack.served_spec(models["degraded"], "2"))
    status = rollouts.wait_status(
        "wine",
        "the disagreeing v2 rolled back",
        lambda s: s.get("reason") == "RolledBack",
        timeout=300,
    )
    rollback = status["lastRollback"]
    assert (rollback["version"], rollback["metric"]) == ("2", "agreement"), rollback
    assert rollback["value"] < 0.97
    answered = traffic.stats()
    assert "2" not in answered, f"a client received an answer of the challenger: {answered}"
    assert set(answered["1"].codes) == {"200"}, answered["1"].codes

    # The same model as a new version agrees on every copy. Its shadow step is held
    # open while `status` shows the champion's figures, read from the real pods
    # through the API server's pod proxy; then the step gets its short duration
    # back and v3 goes on to take traffic.
    held_open = [{"shadow": {"percent": 100, "duration": "5m"}}, *STEPS[1:]]
    rollouts.patch_spec(
        "wine",
        {
            **stack.served_spec(models["baseline"], "3"),
            "strategy": {"canary": {"steps": held_open}},
        },
    )
    shown = wait_for(
        lambda: shadow_block_with_copies(rollouts.cli("status", "wine").stdout),
        timeout=120,
        what="`status` showing compared copies",
        interval=1.0,
    )
    print(f"\n[figure] `kubectl modelrollout status` during v3's shadow step:\n{shown}")
    assert "to " in shown and "(version 3)" in shown, shown
    assert "agreement: 1.0000 of" in shown and "not read:" not in shown, shown
    rollouts.patch_spec("wine", {"strategy": {"canary": {"steps": STEPS}}})
    try:
        status = rollouts.wait_status(
            "wine",
            "v3 promoted",
            lambda s: s.get("stableVersion") == "3" and s.get("phase") == "Healthy",
            timeout=300,
        )
    except WaitTimeoutError as error:
        # What the champion's pods say (copies, window) names why the gate has no data.
        raise WaitTimeoutError(f"{error}\n{rollouts.cli('status', 'wine').stdout}") from None
    assert status["analysis"]["agreement"]["failures"] == 0
    assert status["analysis"]["agreement"]["value"] == 1.0
    answered = traffic.stats()
    assert "3" in answered and "2" not in answered, answered
    print(
        f"\n[figure] shadow: v2 rejected at agreement {rollback['value']:.3f} (min 0.97) with "
        f"{sum(answered['1'].codes.values())} client answers all by v1 until v3; v3 agreed 1.0"
    )
