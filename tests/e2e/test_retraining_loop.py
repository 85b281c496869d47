"""The whole loop on real pods: a model whose world has moved is retrained on the
labels its own traffic collected, and the better model replaces it without anyone
editing anything.

Version 1 was fitted on the breast-cancer table as it was. Today every feature of
the traffic is one standard deviation higher (the load generator's shift), while
each row's diagnosis is what it was. Two replicas serve version 1 from the
registry and record every request in the inference-records store (a real
PostgreSQL); clients post each answer's true label two seconds later, through the
Service, so it reaches any replica. Live accuracy (computed from the joined rows
of both replicas) fails the drift watch's bound, which starts one
retraining Job: the reference image's `modelrollout retrain` reads today's
labelled rows from the store, beats version 1 on the same held-out rows, and
registers version 2 behind the tracked alias. The operator canaries it, compares
it live with version 1
(`accuracy-vs-stable`) and promotes it. The test prints where the time went:
detection, the Job, the rollout. Then a run that fails (it asks for more rows
than exist) is reported as Failed, and version 2 keeps all the traffic.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from modelrollout.devenv import retraining_story as story
from modelrollout.devenv.stack import ServingStack
from modelrollout.devenv.usermodels import DATASET, packaged_classifier
from support.rollouts import Rollouts
from support.serving import wait_all_traffic_on

pytestmark = pytest.mark.e2e
OPERATOR_ENV = story.OPERATOR_ENV
MODEL = story.NAME


def _last(status: dict[str, Any]) -> dict[str, Any]:
    """status.retraining.last, or {} before a run ended."""
    return (status.get("retraining") or {}).get("last") or {}


def test_a_rotting_model_is_retrained_on_its_own_labelled_traffic_and_replaced(
    rollouts: Rollouts, stack: ServingStack, tmp_path: Path
) -> None:
    registry = stack.start_registry()
    records = stack.start_records()
    rollouts.core.create_namespaced_secret(rollouts.namespace, story.records_secret(records.dsn))
    first = packaged_classifier(tmp_path / "v1").register(
        registry.url, story.REGISTERED, story.ALIAS
    )
    assert first.version == "1"
    rollouts.create(story.manifest(stack.image, stack.prometheus.url, registry.url))
    rollouts.wait_phase(MODEL, "Healthy", timeout=240)

    onset = datetime.now(UTC)  # today's traffic reaches version 1: the drift begins
    traffic = stack.traffic(
        rollouts.namespace, MODEL, rate=story.RATE, dataset=DATASET, model=MODEL,
        drift_shift=story.DRIFT_SHIFT, feedback_share=1.0, feedback_via_service=True,
        feedback_delay=story.LABEL_DELAY_SECONDS,
    )  # fmt: skip
    run = rollouts.wait_status(
        MODEL,
        "a retraining run started by the drift",
        lambda s: (
            ((s.get("retraining") or {}).get("active") or {}).get("trigger") is not None
            or _last(s).get("number") == 1
        ),
        timeout=300,
    )
    retraining = run["retraining"]
    started = retraining.get("active") or retraining["last"]
    assert started["trigger"] == "Drift", started
    assert any(metric in started["cause"] for metric in story.DRIFT_METRICS), started

    status = rollouts.wait_status(
        MODEL,
        "run 1 finished",
        lambda s: _last(s).get("number") == 1,
        timeout=600,
    )
    last = status["retraining"]["last"]
    assert last["outcome"] == "Accepted", last
    assert last["championVersion"] == "1" and last["candidateVersion"] == "2", last
    assert last["candidate"]["accuracy"] > last["champion"]["accuracy"] + 0.3, last

    status = rollouts.wait_status(
        MODEL,
        "version 2 promoted",
        lambda s: s.get("stableVersion") == "2" and s.get("phase") == "Healthy",
        timeout=300,
    )
    wait_all_traffic_on(rollouts, MODEL, status["stableRevision"])
    serving_all = datetime.now(UTC)
    assert rollouts.get(MODEL)["metadata"]["generation"] == 1, "the spec was never edited"
    # The drift kept firing while the Job ran: recorded, never a second Job.
    assert status["retraining"]["runs"] == 1, status["retraining"]
    times = story.figures(onset, last, serving_all)

    # A run that fails is reported as such, and nothing serves differently: the
    # training config asks for more labelled rows than the store holds.
    rollouts.patch_spec(MODEL, {"retraining": {"minRows": 10_000_000}})
    rollouts.cli("retrain", MODEL)
    status = rollouts.wait_status(
        MODEL,
        "run 2 reported",
        lambda s: _last(s).get("number") == 2,
        timeout=300,
    )
    failed = status["retraining"]["last"]
    assert failed["outcome"] == "Failed" and failed["trigger"] == "Manual", failed
    assert "10000000" in failed["message"], failed
    assert status["stableVersion"] == "2" and status["phase"] == "Healthy", status
    assert traffic.shares() == {"2": 1.0}, "all traffic stayed on version 2"

    answered = traffic.stats()
    traffic.stop()
    for version in ("1", "2"):
        stats = answered[version]
        assert stats.failed == 0, f"version {version} failed requests: {stats.codes}"
        assert stats.feedback["200"] > 0, f"version {version}'s labels joined: {stats.feedback}"
    # Each label went to whichever replica the Service chose, and none was lost.
    refused = {c: k for v in answered.values() for c, k in v.feedback.items() if c != "200"}
    assert not refused, refused
    print(f"\n[e2e] retraining loop, started by {started['cause']}: {story.summary(last, times)}")
