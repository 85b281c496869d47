"""The operator on the real control plane: deploys, canary and blue/green
rollouts, manual controls, restarts, invalid specs and clean deletion.

Pods run on KWOK's simulated nodes, so readiness is real Kubernetes readiness
(scheduling, ReplicaSets, EndpointSlices); metric analysis is the e2e tier's.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelrollout.api import names as n
from modelrollout.devenv.ports import free_port
from support.kube import ClusterUnderTest
from support.operator import OperatorProcess
from support.rollouts import SETTLE_SECONDS, Rollouts, example, plain_canary
from support.scrape import sample
from support.waiting import sampled, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def rollouts(operator: OperatorProcess, namespace: str) -> Iterator[Rollouts]:
    yield Rollouts(operator.cluster, namespace)


def bluegreen(name: str, **strategy: Any) -> dict[str, Any]:
    body = example("bluegreen")
    body["metadata"]["name"] = name
    body["spec"]["strategy"]["blueGreen"] = strategy
    return body


def revision_of_version(rollouts: Rollouts, name: str, version: str) -> str:
    deployments = rollouts.apps.list_namespaced_deployment(
        rollouts.namespace,
        label_selector=f"{n.LABEL_DEPLOYMENT}={name},{n.LABEL_MODEL_VERSION}={version}",
    ).items
    assert len(deployments) == 1
    return str(deployments[0].metadata.labels[n.LABEL_REVISION])


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def event_count(rollouts: Rollouts, name: str, reason: str) -> int:
    """How many times the operator posted an Event with `reason` on the object."""
    events = rollouts.core.list_namespaced_event(
        rollouts.namespace,
        field_selector=f"involvedObject.name={name},involvedObject.kind={n.KIND},reason={reason}",
    ).items
    return sum(event.count or 1 for event in events)


def reconciles(port: int) -> float:
    """Reconciles done by the operator serving its metrics on `port` (0 while it starts)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return 0.0
    return sample(text, "modelrollout_reconcile_duration_seconds_count")


def wait_replicas(rollouts: Rollouts, name: str, wanted: dict[str, int]) -> None:
    """Each revision's Deployment asks for and has `wanted[revision]` ready pods."""
    wait_for(
        lambda: all(
            rollouts.replicas(name).get(rev, (0, 0)) == (count, count)
            for rev, count in wanted.items()
        ),
        timeout=SETTLE_SECONDS,
        what=f"replicas {wanted} (now {rollouts.replicas(name)})",
    )


def wait_endpoints(rollouts: Rollouts, service: str, wanted: dict[str, int]) -> None:
    wait_for(
        lambda: rollouts.endpoint_revisions(service) == wanted,
        timeout=SETTLE_SECONDS,
        what=f"{service} endpoints {wanted} (now {rollouts.endpoint_revisions(service)})",
    )


def test_first_deploy_reaches_ready_and_kubectl_wait_sees_it(
    rollouts: Rollouts, kube: ClusterUnderTest
) -> None:
    rollouts.create(plain_canary("first", [{"setWeight": 50}], replicas=3))
    kube.kubectl(
        "wait", "--for=condition=Ready", "md/first", "-n", rollouts.namespace, "--timeout=90s"
    )
    status = rollouts.status("first")
    assert status["phase"] == "Healthy"
    assert status["stableVersion"] == "1"
    assert "canaryRevision" not in status, "a first deploy is no rollout"
    stable = status["stableRevision"]
    wait_replicas(rollouts, "first", {stable: 3})
    assert rollouts.selector("first") == {
        n.LABEL_DEPLOYMENT: "first", n.LABEL_REVISION: stable,
    }  # fmt: skip
    wait_endpoints(rollouts, "first", {stable: 3})
    generation = rollouts.get("first")["metadata"]["generation"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["observedGeneration"] == generation

    rollouts.patch_spec("first", {"replicas": 5})  # scaling is no rollout
    wait_replicas(rollouts, "first", {stable: 5})
    status = rollouts.wait_status(
        "first", "observed the new generation",
        lambda s: s.get("observedGeneration") == generation + 1 and s.get("phase") == "Healthy",
    )  # fmt: skip
    assert status["stableRevision"] == stable and "canaryRevision" not in status


def test_canary_walks_its_steps_waits_for_promote_and_completes(rollouts: Rollouts) -> None:
    steps = [
        {"setWeight": 25},
        {"pause": {"duration": "15s"}},
        {"setWeight": 50},
        {"pause": {}},
    ]
    rollouts.create(plain_canary("fraud", steps))
    old = rollouts.wait_phase("fraud", "Healthy")["stableRevision"]
    rollouts.patch_spec("fraud", {"model": {"version": "2"}})

    # Step 2 (the timed pause) holds weight 25%: 1 canary pod of 4, 3 stable.
    status = rollouts.wait_status("fraud", "the timed pause", lambda s: s.get("currentStep") == 1)
    new = status["canaryRevision"]
    assert new != old and status["canaryVersion"] == "2" and status["stableRevision"] == old
    wait_replicas(rollouts, "fraud", {new: 1, old: 3})
    assert rollouts.selector("fraud") == {n.LABEL_DEPLOYMENT: "fraud"}, (
        "one Service, both revisions"
    )
    wait_endpoints(rollouts, "fraud", {new: 1, old: 3})
    wait_endpoints(rollouts, "fraud-canary", {new: 1})
    # The weight in effect: ready canary pods over all ready pods, 1 of 4.
    rollouts.wait_status("fraud", "weight 25 in effect", lambda s: s.get("canaryWeight") == 25)

    # The indefinite pause at 50% waits for `promote`.
    status = rollouts.wait_status(
        "fraud", "the indefinite pause", lambda s: s.get("currentStep") == 3, timeout=120
    )
    assert status["phase"] == "Paused" and status["reason"] == "AwaitingPromotion"
    wait_replicas(rollouts, "fraud", {new: 2, old: 2})
    wait_endpoints(rollouts, "fraud", {new: 2, old: 2})
    rollouts.wait_status("fraud", "weight 50 in effect", lambda s: s.get("canaryWeight") == 50)

    shown = rollouts.cli("status", "fraud").stdout
    assert "-> 4. pause (until promote)" in shown and "Paused" in shown

    rollouts.cli("promote", "fraud")
    status = rollouts.wait_phase("fraud", "Healthy")
    assert status["stableRevision"] == new and status["stableVersion"] == "2"
    wait_replicas(rollouts, "fraud", {new: 4, old: 0})
    assert rollouts.selector("fraud") == {n.LABEL_DEPLOYMENT: "fraud", n.LABEL_REVISION: new}
    wait_endpoints(rollouts, "fraud", {new: 4})
    history = rollouts.status("fraud")["history"]
    assert [(h["revision"], h["version"]) for h in history] == [(new, "2"), (old, "1")]
    assert old in rollouts.replicas("fraud"), "the old revision is kept (at 0) for undo"


def test_blue_green_previews_then_switches_by_itself_and_scales_the_old_one_down_later(
    rollouts: Rollouts,
) -> None:
    rollouts.create(
        bluegreen("penguins", previewReplicas=1, autoPromotionSeconds=10, scaleDownDelaySeconds=20)
    )
    blue = rollouts.wait_phase("penguins", "Healthy")["stableRevision"]

    def world() -> tuple[str, dict[str, tuple[int, int]]]:
        return rollouts.selector("penguins")[n.LABEL_REVISION], rollouts.replicas("penguins")

    with sampled(world) as seen:
        rollouts.patch_spec("penguins", {"model": {"version": "2"}})
        status = rollouts.wait_status(
            "penguins", "a ready preview", lambda s: s.get("reason") == "Previewing"
        )
        green = status["canaryRevision"]
        wait_replicas(rollouts, "penguins", {green: 1, blue: 2})
        wait_endpoints(rollouts, "penguins-preview", {green: 1})
        assert rollouts.selector("penguins")[n.LABEL_REVISION] == blue
        wait_endpoints(rollouts, "penguins", {blue: 2})
        # No `promote`: autoPromotionSeconds switches it.
        status = rollouts.wait_phase("penguins", "Healthy")
        wait_replicas(rollouts, "penguins", {green: 2, blue: 0})
        wait_endpoints(rollouts, "penguins", {green: 2})
    assert status["stableRevision"] == green
    switched = [replicas for selected, replicas in seen if selected == green]
    assert switched, "never saw the main Service on green"
    # Green was at full size before the switch; blue stayed up for the delay after it.
    assert switched[0][green] == (2, 2), switched[0]
    assert switched[0][blue][0] == 2, switched[0]
    before = [replicas for selected, replicas in seen if selected == blue]
    assert all(replicas[blue][0] == 2 for replicas in before), "blue shrank before the switch"


def test_abort_returns_all_traffic_to_stable_until_retry(rollouts: Rollouts) -> None:
    rollouts.create(plain_canary("abortme", [{"setWeight": 50}, {"pause": {}}]))
    old = rollouts.wait_phase("abortme", "Healthy")["stableRevision"]
    rollouts.patch_spec("abortme", {"model": {"version": "2"}})
    new = rollouts.wait_status(
        "abortme", "the pause", lambda s: s.get("reason") == "AwaitingPromotion"
    )["canaryRevision"]
    wait_endpoints(rollouts, "abortme", {new: 2, old: 2})

    rollouts.cli("abort", "abortme")
    status = rollouts.wait_phase("abortme", "Degraded")
    assert status["reason"] == "Aborted" and status["stableRevision"] == old
    assert rollouts.selector("abortme")[n.LABEL_REVISION] == old
    wait_replicas(rollouts, "abortme", {old: 4, new: 0})
    wait_endpoints(rollouts, "abortme", {old: 4})
    refused = rollouts.cli("promote", "abortme", check=False)
    assert refused.returncode == 3 and "does not apply" in refused.stderr

    rollouts.cli("retry", "abortme")
    rollouts.wait_status("abortme", "the rollout again", lambda s: s.get("canaryRevision") == new)


def test_a_restarted_operator_resumes_at_the_same_step_without_promoting_twice(
    rollouts: Rollouts, operator: OperatorProcess
) -> None:
    pause = 20
    steps = [
        {"setWeight": 25},
        {"pause": {"duration": f"{pause}s"}},
        {"setWeight": 50},
        {"pause": {}},
        {"setWeight": 75},
        {"pause": {}},
    ]
    rollouts.create(plain_canary("resume", steps))
    rollouts.wait_phase("resume", "Healthy")
    rollouts.patch_spec("resume", {"model": {"version": "2"}})
    before = rollouts.wait_status("resume", "the timed pause", lambda s: s.get("currentStep") == 1)
    paused_at = parse_time(before["stepStartedAt"])
    # Half the pause in, so a pause restarted by the new process would end clearly
    # later than the original deadline.
    wait_for(
        lambda: datetime.now(UTC) > paused_at + timedelta(seconds=pause / 2),
        timeout=pause, what="half the pause to pass",
    )  # fmt: skip
    operator.kill()
    port = free_port()
    operator.options = ("--standalone", "--metrics-port", str(port))
    operator.start()
    # The new process's own metrics say when it first reconciled the object (the
    # only one in this namespace); a pause timer restarted by it would end a whole
    # pause after that, the original one ends at its old deadline.
    wait_for(lambda: reconciles(port) >= 1, timeout=120, what="the restarted operator's reconcile")
    first_reconcile_at = datetime.now(UTC)
    after = rollouts.wait_status(
        "resume", "the step after the pause",
        lambda s: s.get("currentStep", 0) >= 2, timeout=120,
    )  # fmt: skip
    assert after["canaryRevision"] == before["canaryRevision"]
    assert after["rolloutStartedAt"] == before["rolloutStartedAt"]
    next_step_at = parse_time(after["stepStartedAt"])
    deadline = paused_at + timedelta(seconds=pause)
    assert next_step_at >= deadline, "the pause was cut short"
    assert next_step_at < max(deadline, first_reconcile_at) + timedelta(seconds=pause / 2), (
        f"the pause restarted with the new process: it ended at {next_step_at}, the original "
        f"deadline was {deadline}, the new process reconciled first at {first_reconcile_at}"
    )

    rollouts.wait_status(
        "resume", "the first indefinite pause", lambda s: s.get("currentStep") == 3
    )
    rollouts.cli("promote", "resume")  # waits until the operator has applied it
    promoted = rollouts.wait_status(
        "resume", "the second indefinite pause",
        lambda s: s.get("currentStep") == 5 and s.get("reason") == "AwaitingPromotion",
    )  # fmt: skip
    operator.kill()
    port = free_port()
    operator.options = ("--standalone", "--metrics-port", str(port))
    operator.start()
    # The command annotation is still on the object: the new process must not apply
    # it again (it would skip the second pause and promote). Its own metrics say when
    # it has reconciled the object (the only one in this namespace).
    wait_for(
        lambda: reconciles(port) >= 1, timeout=60, what="the restarted operator's first reconcile"
    )
    status = rollouts.status("resume")
    assert status["currentStep"] == 5 and status["reason"] == "AwaitingPromotion", status
    assert status["lastCommand"]["id"] == promoted["lastCommand"]["id"]
    assert status["stableVersion"] == "1"
    assert event_count(rollouts, "resume", "CommandApplied") == 1

    rollouts.cli("promote", "resume")
    status = rollouts.wait_phase("resume", "Healthy")
    versions = [h["version"] for h in status["history"]]
    assert versions == ["2", "1"], "promoted exactly once"
    assert event_count(rollouts, "resume", "Promoted") == 1


def test_an_unusable_spec_is_degraded_while_other_objects_are_served(
    rollouts: Rollouts,
) -> None:
    # A header route needs a router: the API server accepts it, only the operator can judge.
    header_route = {"name": "team", "match": [{"headerName": "x-team", "headerValue": "ml"}]}
    broken = plain_canary("gateway", [{"setHeaderRoute": header_route}, {"setWeight": 50}])
    rollouts.create(broken)
    rollouts.create(plain_canary("healthy", [{"setWeight": 50}], replicas=2))
    status = rollouts.wait_phase("gateway", "Degraded")
    assert status["reason"] == "InvalidSpec"
    assert "steps[0].setHeaderRoute: needs strategy.canary.trafficRouting" in status["message"]
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "InvalidSpec"
    assert rollouts.replicas("gateway") == {}, "nothing is deployed for an unusable spec"
    rollouts.wait_phase("healthy", "Healthy")


def test_deleting_a_model_deployment_leaves_nothing_behind(rollouts: Rollouts) -> None:
    rollouts.create(plain_canary("gone", [{"setWeight": 50}, {"pause": {}}], replicas=2))
    rollouts.wait_phase("gone", "Healthy")
    rollouts.patch_spec("gone", {"model": {"version": "2"}})
    rollouts.wait_status("gone", "a rollout", lambda s: s.get("reason") == "AwaitingPromotion")
    assert len(rollouts.replicas("gone")) == 2

    rollouts.delete("gone")
    selector = f"{n.LABEL_DEPLOYMENT}=gone"

    def leftovers() -> list[str]:
        ns = rollouts.namespace
        found = [
            d.metadata.name
            for d in rollouts.apps.list_namespaced_deployment(ns, label_selector=selector).items
        ]
        found += [
            s.metadata.name
            for s in rollouts.core.list_namespaced_service(ns, label_selector=selector).items
        ]
        found += [
            p.metadata.name
            for p in rollouts.core.list_namespaced_pod(ns, label_selector=selector).items
        ]
        found += [
            m["metadata"]["name"]
            for m in rollouts.custom.list_namespaced_custom_object(
                n.GROUP, n.VERSION, ns, n.PLURAL
            )["items"]
            if m["metadata"]["name"] == "gone"
        ]
        return found

    wait_for(lambda: not leftovers(), timeout=SETTLE_SECONDS, what="nothing left of 'gone'")
