"""Metric-gated rollouts end to end in the operator: the real operator process,
the real control plane and a real Prometheus scraping an exporter whose values
the test sets. A passing metric promotes; a failing one rolls back at once and
notifies; a stopped Prometheus pauses the rollout until it is back; once Healthy
the stable revision is watched for drift.

Intervals are short (analysis every 2 s, scrape every 1 s) and every wait has a
deadline. Figures (time from the spec change to the rollback) are printed.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from modelrollout.api import names as n
from support.exporter import QUALITY, MetricsLab, metrics_lab
from support.hooks import Hook, running_hook
from support.operator import OperatorProcess
from support.rollouts import Rollouts, example
from support.waiting import wait_for

pytestmark = pytest.mark.integration

QUERY = f'max({QUALITY}{{model_version="{{{{ version }}}}"}})'


@pytest.fixture
def rollouts(operator: OperatorProcess, namespace: str) -> Iterator[Rollouts]:
    yield Rollouts(operator.cluster, namespace)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[MetricsLab]:
    with metrics_lab(tmp_path / "prometheus") as running:
        yield running


@pytest.fixture
def hook(rollouts: Rollouts) -> Iterator[Hook]:
    with running_hook() as receiver:
        rollouts.core.create_namespaced_secret(
            rollouts.namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name="notify"),
                data={"url": base64.b64encode(receiver.url.encode()).decode()},
            ),
        )
        yield receiver


def analysed(
    name: str,
    lab: MetricsLab,
    steps: list[dict[str, Any]],
    *,
    notify_format: str | None = None,
    **analysis: Any,
) -> dict[str, Any]:
    body = example("canary")
    body["metadata"]["name"] = name
    spec = body["spec"]
    spec["replicas"] = 2
    spec["model"]["version"] = "1"
    spec["strategy"]["canary"]["steps"] = steps
    spec["analysis"] = {
        "interval": "2s",
        "failureLimit": 1,
        "consecutiveErrorLimit": 100,
        "onNoData": "Pause",
        "prometheus": {"address": lab.url},
        "metrics": [{"name": "quality", "query": QUERY, "min": 0.8}],
        **analysis,
    }
    if notify_format:
        spec["notifications"] = {
            "webhook": {"urlSecretRef": {"name": "notify", "key": "url"}, "format": notify_format}
        }
    return body


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status.get("conditions", []) if c["type"] == kind)


def event_reasons(rollouts: Rollouts, name: str) -> list[str]:
    events = rollouts.core.list_namespaced_event(
        rollouts.namespace, field_selector=f"involvedObject.name={name}"
    ).items
    return [e.reason for e in events]


def test_a_passing_metric_promotes_and_the_stable_revision_is_then_watched_for_drift(
    rollouts: Rollouts, lab: MetricsLab, hook: Hook
) -> None:
    lab.set_quality("1", 0.95)
    lab.set_quality("2", 0.93)
    lab.wait_scraped("2", 0.93)
    steps = [{"setWeight": 50}, {"pause": {"duration": "2s"}}]
    rollouts.create(analysed("good", lab, steps, notify_format="json"))
    rollouts.wait_phase("good", "Healthy")
    rollouts.patch_spec("good", {"model": {"version": "2"}})
    rollouts.wait_status("good", "a rollout", lambda s: s.get("canaryVersion") == "2")
    status = rollouts.wait_status(
        "good", "promotion of version 2", lambda s: s.get("stableVersion") == "2", timeout=120
    )
    assert "canaryRevision" not in status
    quality = status["analysis"]["quality"]
    assert quality["verdict"] == "pass" and quality["value"] == pytest.approx(0.93)
    assert quality["threshold"] == "min 0.8" and quality["successes"] >= 2
    assert quality["failures"] == 0
    shown = rollouts.cli("status", "good").stdout
    assert "quality" in shown and "0.93" in shown and "min 0.8" in shown

    # Healthy: version 2 keeps being measured; a sustained breach is drift, not a rollback.
    rollouts.wait_phase("good", "Healthy")
    lab.set_quality("2", 0.5)
    started = time.monotonic()
    status = rollouts.wait_status(
        "good", "Drifted", lambda s: condition(s, "Drifted")["status"] == "True", timeout=60
    )
    detected = time.monotonic() - started
    assert status["phase"] == "Healthy" and status["reason"] == "Drifted"
    assert status["stableVersion"] == "2", "drift starts no rollout"
    drift = status["drift"]
    assert (drift["metric"], drift["value"], drift["threshold"]) == ("quality", 0.5, "min 0.8")
    assert condition(status, "Ready")["status"] == "True"
    notified = wait_for(
        lambda: [b for b in hook.bodies() if b.get("reason") == "Drifted"],
        timeout=30,
        what="the drift notification",
    )
    assert notified[0]["drift"]["metric"] == "quality" and notified[0]["name"] == "good"
    print(f"\n[figure] drift flagged {detected:.1f} s after the metric went bad (interval 2 s)")

    lab.set_quality("2", 0.95)
    rollouts.wait_status(
        "good", "drift cleared", lambda s: condition(s, "Drifted")["status"] == "False", timeout=60
    )
    wait_for(
        lambda: {"Drifted", "DriftRecovered"} <= set(event_reasons(rollouts, "good")),
        timeout=30,
        what="Drifted and DriftRecovered events",
    )


def test_a_failing_metric_rolls_back_automatically_and_notifies(
    rollouts: Rollouts, lab: MetricsLab, hook: Hook
) -> None:
    lab.set_quality("1", 0.95)
    lab.set_quality("2", 0.3)
    lab.wait_scraped("2", 0.3)
    steps = [{"setWeight": 50}, {"pause": {}}]
    rollouts.create(analysed("bad", lab, steps, notify_format="slack"))
    stable = rollouts.wait_phase("bad", "Healthy")["stableRevision"]
    changed = time.monotonic()
    rollouts.patch_spec("bad", {"model": {"version": "2"}})
    status = rollouts.wait_phase("bad", "Degraded", timeout=120)
    rolled_back_after = time.monotonic() - changed
    assert status["reason"] == "RolledBack"
    assert status["stableRevision"] == stable and status["stableVersion"] == "1"
    rollback = status["lastRollback"]
    assert (rollback["metric"], rollback["value"], rollback["threshold"]) == (
        "quality",
        0.3,
        "min 0.8",
    )
    assert rollback["version"] == "2" and rollback["reason"] == "RolledBack"
    assert status["analysis"]["quality"]["failures"] == 2  # failureLimit 1 tolerates one
    # All traffic on stable: the Service pins it and the canary is scaled away.
    assert rollouts.selector("bad") == {n.LABEL_DEPLOYMENT: "bad", n.LABEL_REVISION: stable}
    wait_for(
        lambda: {r: w for r, (w, _) in rollouts.replicas("bad").items() if w} == {stable: 2},
        timeout=60,
        what="only the stable revision running",
    )
    slack = wait_for(
        lambda: [b for b in hook.bodies() if "RolledBack" in b.get("text", "")],
        timeout=30,
        what="the rollback notification",
    )
    assert "bad" in slack[0]["text"] and "quality" in slack[0]["text"]
    print(
        f"\n[figure] rolled back {rolled_back_after:.1f} s after the spec change "
        "(2 failing measurements, interval 2 s, including the canary's start on KWOK)"
    )


def test_a_stopped_prometheus_pauses_the_rollout_until_it_is_back(
    rollouts: Rollouts, lab: MetricsLab
) -> None:
    lab.set_quality("1", 0.95)
    lab.set_quality("2", 0.95)
    lab.wait_scraped("2", 0.95)
    steps = [{"setWeight": 50}, {"pause": {"duration": "2s"}}, {"setWeight": 75}]
    rollouts.create(analysed("outage", lab, steps))
    rollouts.wait_phase("outage", "Healthy")
    rollouts.patch_spec("outage", {"model": {"version": "2"}})
    rollouts.wait_status(
        "outage", "the first step passed", lambda s: s.get("currentStep", 0) >= 1, timeout=120
    )
    lab.stop_prometheus()
    status = rollouts.wait_status(
        "outage", "paused on errors", lambda s: s.get("reason") == "AnalysisUnavailable", timeout=60
    )
    assert status["phase"] == "Paused"
    assert "cannot reach Prometheus" in status["message"]
    assert status["stableVersion"] == "1" and status["canaryVersion"] == "2", "not promoted"
    errors = status["analysis"]["quality"]["consecutiveErrors"]
    assert errors >= 1
    # Still paused a few intervals later, counting errors, never promoting.
    status = rollouts.wait_status(
        "outage",
        "more errors counted",
        lambda s: s["analysis"]["quality"]["consecutiveErrors"] >= errors + 2,
        timeout=60,
    )
    assert status["phase"] == "Paused" and status["stableVersion"] == "1"

    lab.restart_prometheus()
    status = rollouts.wait_status(
        "outage", "promotion after Prometheus is back",
        lambda s: s.get("stableVersion") == "2", timeout=120,
    )  # fmt: skip
    assert status["analysis"]["quality"]["verdict"] == "pass"
