"""What GitOps tools see: the Argo CD health check (gitops/argocd/health.lua, run
in a real Lua 5.1 interpreter like Argo CD's gopher-lua) on status fixtures of
every phase, and both the Lua and the kstatus rules Flux uses on the live objects
of a real rollout: deployed, paused at a step, a spec the operator has not seen
yet, promoted, aborted.

kstatus (sigs.k8s.io/cli-utils pkg/kstatus/status, generic rules for custom
resources): deletionTimestamp -> Terminating; status.observedGeneration present
and != metadata.generation -> InProgress; a condition Reconciling=True ->
InProgress; Stalled=True -> Failed; otherwise Current.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from lupa import lua51

from modelrollout.devenv.tools import REPO_ROOT
from support.operator import OperatorProcess
from support.rollouts import Rollouts, example

HEALTH_LUA = REPO_ROOT / "gitops" / "argocd" / "health.lua"


def argocd_health(body: dict[str, Any]) -> tuple[str, str]:
    """(status, message) as Argo CD computes them: the script with `obj` set."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    # Through JSON, as Argo CD hands the object over: plain tables, no Python types.
    lua.globals().obj = lua.table_from(json.loads(json.dumps(body)), recursive=True)
    script = f"return (function()\n{HEALTH_LUA.read_text()}\nend)()"
    result = lua.execute(script)
    return str(result["status"]), str(result["message"] or "")


def kstatus(body: dict[str, Any]) -> str:
    """cli-utils kstatus on a custom resource without type-specific rules."""
    metadata, status = body.get("metadata", {}), body.get("status") or {}
    if metadata.get("deletionTimestamp"):
        return "Terminating"
    observed = status.get("observedGeneration")
    if observed is not None and observed != metadata.get("generation"):
        return "InProgress"
    for condition in status.get("conditions", []):
        if condition["type"] == "Reconciling" and condition["status"] == "True":
            return "InProgress"
        if condition["type"] == "Stalled" and condition["status"] == "True":
            return "Failed"
    return "Current"


def fixture(phase: str | None, generation: int = 2, observed: int = 2, **status: Any) -> Any:
    true_by_phase = {
        "Healthy": {"Ready"},
        "Progressing": {"Progressing", "Reconciling"},
        "Paused": {"Paused", "Reconciling"},
        "Degraded": {"Degraded", "Stalled"},
    }
    body: dict[str, Any] = {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "fraud", "namespace": "ml", "generation": generation},
    }
    if phase is None:
        return body
    kinds = ["Ready", "Progressing", "Paused", "Degraded", "Reconciling", "Stalled"]
    body["status"] = {
        "phase": phase,
        "observedGeneration": observed,
        "message": f"{phase} message",
        "conditions": [
            {
                "type": kind,
                "status": "True" if kind in true_by_phase.get(phase, set()) else "False",
                "observedGeneration": observed,
            }
            for kind in kinds
        ],
        **status,
    }
    return body


@pytest.mark.unit
@pytest.mark.parametrize(
    ("body", "health", "in_message"),
    [
        (fixture(None), "Progressing", "observe"),
        (fixture("Healthy", generation=3, observed=2), "Progressing", "generation 3"),
        (fixture("Progressing"), "Progressing", "Progressing message"),
        (fixture("Paused", reason="AwaitingPromotion"), "Suspended", "Paused message"),
        (fixture("Paused", reason="AnalysisUnavailable"), "Suspended", "Paused message"),
        (fixture("Healthy"), "Healthy", "Healthy message"),
        (fixture("Degraded", reason="RolledBack"), "Degraded", "RolledBack: Degraded message"),
        (fixture("Degraded", reason="Aborted"), "Degraded", "Aborted:"),
        (fixture("Degraded", reason="InvalidSpec"), "Degraded", "InvalidSpec:"),
        (fixture("Sideways"), "Unknown", "Sideways"),
    ],
    ids=[
        "no-status",
        "generation-not-observed",
        "progressing",
        "paused-step",
        "paused-prometheus-down",
        "healthy",
        "rolled-back",
        "aborted",
        "invalid-spec",
        "unknown-phase",
    ],
)
def test_argocd_health_of_every_phase(body: Any, health: str, in_message: str) -> None:
    status, message = argocd_health(body)
    assert status == health
    assert in_message in message


@pytest.mark.unit
def test_a_drifting_model_stays_healthy_and_says_so() -> None:
    body = fixture("Healthy")
    body["status"]["conditions"].append(
        {"type": "Drifted", "status": "True", "message": "psi 0.4 > max 0.25"}
    )
    assert argocd_health(body) == ("Healthy", "Drifted: psi 0.4 > max 0.25")
    assert kstatus(body) == "Current"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (fixture(None), "Current"),  # kstatus cannot tell before the first status
        (fixture("Healthy", generation=3, observed=2), "InProgress"),
        (fixture("Progressing"), "InProgress"),
        (fixture("Paused"), "InProgress"),
        (fixture("Healthy"), "Current"),
        (fixture("Degraded"), "Failed"),
    ],
)
def test_kstatus_of_every_phase(body: Any, expected: str) -> None:
    assert kstatus(body) == expected


@pytest.fixture
def rollouts(operator: OperatorProcess, namespace: str) -> Iterator[Rollouts]:
    yield Rollouts(operator.cluster, namespace)


def seen(rollouts: Rollouts, name: str) -> tuple[str, str]:
    body = rollouts.get(name)
    return argocd_health(body)[0], kstatus(body)


@pytest.mark.integration
def test_argocd_and_kstatus_on_the_live_objects_of_a_rollout(
    rollouts: Rollouts, operator: OperatorProcess
) -> None:
    body = example("canary")
    del body["spec"]["analysis"]
    body["spec"]["replicas"] = 2
    body["spec"]["strategy"]["canary"]["steps"] = [{"setWeight": 50}, {"pause": {}}]
    rollouts.create(body)
    rollouts.wait_phase("fraud", "Healthy")
    assert seen(rollouts, "fraud") == ("Healthy", "Current")

    # A spec the operator has not observed yet: both say "in progress".
    operator.stop()
    rollouts.patch_spec("fraud", {"model": {"version": "8"}})
    assert seen(rollouts, "fraud") == ("Progressing", "InProgress")
    operator.start()

    rollouts.wait_status(
        "fraud", "paused at the manual step", lambda s: s.get("reason") == "AwaitingPromotion"
    )
    assert seen(rollouts, "fraud") == ("Suspended", "InProgress")
    rollouts.cli("promote", "fraud")
    rollouts.wait_status("fraud", "version 8 promoted", lambda s: s.get("stableVersion") == "8")
    assert seen(rollouts, "fraud") == ("Healthy", "Current")

    rollouts.patch_spec("fraud", {"model": {"version": "9"}})
    rollouts.wait_status("fraud", "version 9 rolling out", lambda s: s.get("canaryVersion") == "9")
    rollouts.cli("abort", "fraud")
    rollouts.wait_phase("fraud", "Degraded")
    health, status = seen(rollouts, "fraud")
    assert (health, status) == ("Degraded", "Failed")
    live = rollouts.get("fraud")
    assert live["status"]["observedGeneration"] == live["metadata"]["generation"]
    assert "Aborted" in argocd_health(live)[1]
    # `retry` rolls the held revision out again without touching spec (Git stays the truth).
    rollouts.cli("retry", "fraud")
    rollouts.wait_status(
        "fraud", "paused again after retry", lambda s: s.get("reason") == "AwaitingPromotion"
    )
    assert seen(rollouts, "fraud") == ("Suspended", "InProgress")


@pytest.mark.unit
def test_the_argocd_cm_snippet_holds_the_same_script() -> None:
    snippet = yaml.safe_load((REPO_ROOT / "gitops" / "argocd" / "argocd-cm.yaml").read_text())
    key = "resource.customizations.health.modelrollout.io_ModelDeployment"
    assert snippet["data"][key].strip() == HEALTH_LUA.read_text().strip()
