"""What GitOps tools see: the Argo CD health check (gitops/argocd/health.lua, run
in a real Lua 5.1 interpreter like Argo CD's gopher-lua) on status fixtures of
every phase, and both the Lua and kstatus, the rules of Flux's health checks, on
the live objects of real rollouts: no status yet, a spec the operator has not
seen yet, progressing, paused at a step, promoted, aborted, retried, and rolled
back automatically by a failed analysis.

kstatus is the real one: tools/kstatus, a small Go command around
sigs.k8s.io/cli-utils pkg/kstatus/status `Compute`, built by tools/cluster/build.sh
with the cluster's binaries. It reads the objects as the API server returned them.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from lupa import lua51

from modelrollout.devenv.tools import REPO_ROOT, ensure_tools
from support.kube import fresh_namespace
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


# (status, message) of every object given, from kstatus's `status.Compute`.
Kstatus = Callable[..., list[tuple[str, str]]]


def run_kstatus(binary: Path, *bodies: dict[str, Any]) -> list[tuple[str, str]]:
    """The objects through tools/kstatus: one as itself, several as a List."""
    document = (
        bodies[0] if len(bodies) == 1 else {"apiVersion": "v1", "kind": "List", "items": bodies}
    )
    result = subprocess.run(
        [str(binary)], input=json.dumps(document), capture_output=True, text=True,
        check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, f"kstatus exited {result.returncode}: {result.stderr}"
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    names = [body["metadata"]["name"] for body in bodies]
    assert [line["name"] for line in lines] == names, result.stdout
    return [(line["status"], line["message"]) for line in lines]


@pytest.fixture(scope="module")
def kstatus() -> Kstatus:
    """tools/kstatus, built on a cold machine like the cluster's binaries."""
    binary = ensure_tools().kstatus
    return lambda *bodies: run_kstatus(binary, *bodies)


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


def drifting() -> Any:
    body = fixture("Healthy")
    body["status"]["conditions"].append(
        {"type": "Drifted", "status": "True", "message": "psi 0.4 > max 0.25"}
    )
    return body


@pytest.mark.unit
def test_a_drifting_model_stays_healthy_and_says_so() -> None:
    body = drifting()
    assert argocd_health(body) == ("Healthy", "Drifted: psi 0.4 > max 0.25")


def named(name: str, body: Any) -> Any:
    body["metadata"]["name"] = name
    return body


def terminating() -> Any:
    body = fixture("Healthy")
    body["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return body


@pytest.mark.integration
def test_kstatus_on_the_status_fixtures(kstatus: Kstatus) -> None:
    """The fixtures above through real kstatus (one List): what the README's Flux
    paragraph promises, including what no live rollout here reaches (drift)."""
    cases = {
        "no-status": (fixture(None), "Current"),  # kstatus cannot tell before a status
        "generation-not-observed": (fixture("Healthy", generation=3, observed=2), "InProgress"),
        "progressing": (fixture("Progressing"), "InProgress"),
        "paused": (fixture("Paused"), "InProgress"),
        "healthy": (fixture("Healthy"), "Current"),
        "drifting": (drifting(), "Current"),
        "degraded": (fixture("Degraded"), "Failed"),
        "terminating": (terminating(), "Terminating"),
    }
    bodies = [named(name, body) for name, (body, _) in cases.items()]
    seen = {name: status for name, (status, _) in zip(cases, kstatus(*bodies), strict=True)}
    assert seen == {name: expected for name, (_, expected) in cases.items()}


@pytest.fixture
def rollouts(operator: OperatorProcess, namespace: str) -> Iterator[Rollouts]:
    yield Rollouts(operator.cluster, namespace)


class Seen(NamedTuple):
    """One live object as Argo CD (the Lua) and Flux (kstatus) judge it."""

    argocd: str
    kstatus: str
    argocd_message: str
    kstatus_message: str

    @property
    def verdicts(self) -> tuple[str, str]:
        return self.argocd, self.kstatus


def seen(rollouts: Rollouts, kstatus: Kstatus, name: str) -> Seen:
    body = rollouts.get(name)  # as the API server returns it, status and all
    health, health_message = argocd_health(body)
    [(status, message)] = kstatus(body)
    return Seen(health, status, health_message, message)


def at_pause_step(version: str) -> Callable[[dict[str, Any]], bool]:
    """The canary of `version` waiting out the hour-long timed pause: Progressing."""
    return lambda s: (
        s.get("canaryVersion") == version
        and s.get("phase") == "Progressing"
        and s.get("reason") == "PauseStep"
    )


@pytest.mark.integration
def test_argocd_and_kstatus_on_the_live_objects_of_a_rollout(
    rollouts: Rollouts, operator: OperatorProcess, kstatus: Kstatus
) -> None:
    body = example("canary")
    del body["spec"]["analysis"]
    body["spec"]["replicas"] = 2
    # The timed pause holds the rollout in Progressing long enough to look at it.
    body["spec"]["strategy"]["canary"]["steps"] = [
        {"setWeight": 50},
        {"pause": {"duration": "1h"}},
        {"pause": {}},
    ]

    # No status yet (a namespace no operator watches): kstatus cannot tell, Current.
    with fresh_namespace(rollouts.kube, "unwatched") as unwatched:
        Rollouts(rollouts.kube, unwatched).create(body)
        seen_first = seen(Rollouts(rollouts.kube, unwatched), kstatus, "fraud")
        assert seen_first.verdicts == ("Progressing", "Current")

    rollouts.create(body)
    rollouts.wait_phase("fraud", "Healthy")
    assert seen(rollouts, kstatus, "fraud").verdicts == ("Healthy", "Current")

    # A spec the operator has not observed yet: both say "in progress".
    operator.stop()
    rollouts.patch_spec("fraud", {"model": {"version": "8"}})
    unobserved = seen(rollouts, kstatus, "fraud")
    assert unobserved.verdicts == ("Progressing", "InProgress")
    assert "latest observed generation is" in unobserved.kstatus_message
    operator.start()

    rollouts.wait_status("fraud", "version 8 at the timed pause", at_pause_step("8"))
    assert seen(rollouts, kstatus, "fraud").verdicts == ("Progressing", "InProgress")
    rollouts.cli("promote", "fraud")  # skips the timed pause
    rollouts.wait_status(
        "fraud", "paused at the manual step", lambda s: s.get("reason") == "AwaitingPromotion"
    )
    assert seen(rollouts, kstatus, "fraud").verdicts == ("Suspended", "InProgress")
    rollouts.cli("promote", "fraud")
    rollouts.wait_status(
        "fraud",
        "version 8 promoted",
        lambda s: s.get("stableVersion") == "8" and s.get("phase") == "Healthy",
    )
    assert seen(rollouts, kstatus, "fraud").verdicts == ("Healthy", "Current")

    rollouts.patch_spec("fraud", {"model": {"version": "9"}})
    rollouts.wait_status("fraud", "version 9 at the timed pause", at_pause_step("9"))
    rollouts.cli("abort", "fraud")
    rollouts.wait_phase("fraud", "Degraded")
    aborted = seen(rollouts, kstatus, "fraud")
    assert aborted.verdicts == ("Degraded", "Failed")
    assert aborted.argocd_message.startswith("Aborted:")
    assert "aborted by `abort`" in aborted.kstatus_message
    live = rollouts.get("fraud")
    assert live["status"]["observedGeneration"] == live["metadata"]["generation"]
    # `retry` rolls the held revision out again without touching spec (Git stays the truth).
    rollouts.cli("retry", "fraud")
    rollouts.wait_status("fraud", "version 9 at the timed pause after retry", at_pause_step("9"))
    assert seen(rollouts, kstatus, "fraud").verdicts == ("Progressing", "InProgress")


@pytest.mark.integration
def test_argocd_and_kstatus_on_a_live_automatic_rollback(
    rollouts: Rollouts, kstatus: Kstatus
) -> None:
    body = example("canary")
    body["metadata"]["name"] = "wine"
    spec = body["spec"]
    spec["replicas"] = 2
    spec["strategy"]["canary"]["steps"] = [{"setWeight": 50}, {"pause": {}}]
    # Nothing listens on port 9: every query is refused, and consecutiveErrorLimit 0
    # fails the rollout on the first error. A real RolledBack, no Prometheus needed.
    spec["analysis"] = {
        "interval": "2s",
        "consecutiveErrorLimit": 0,
        "prometheus": {"address": "http://127.0.0.1:9"},
        "metrics": [{"name": "error-rate", "query": "vector(0)", "max": 0.05}],
    }
    rollouts.create(body)
    rollouts.wait_phase("wine", "Healthy")
    # The stable revision's drift watch meets the same errors; they say nothing
    # about the model, so it stays Healthy and Current.
    assert seen(rollouts, kstatus, "wine").verdicts == ("Healthy", "Current")

    rollouts.patch_spec("wine", {"model": {"version": "8"}})
    status = rollouts.wait_phase("wine", "Degraded")
    assert status["reason"] == "RolledBack"
    assert status["lastRollback"]["version"] == "8"
    assert status["stableVersion"] == "7"
    rolled_back = seen(rollouts, kstatus, "wine")
    assert rolled_back.verdicts == ("Degraded", "Failed")
    assert rolled_back.argocd_message.startswith("RolledBack:")
    assert "consecutiveErrorLimit 0: cannot reach Prometheus" in rolled_back.kstatus_message


@pytest.mark.unit
def test_the_argocd_cm_snippet_holds_the_same_script() -> None:
    snippet = yaml.safe_load((REPO_ROOT / "gitops" / "argocd" / "argocd-cm.yaml").read_text())
    key = "resource.customizations.health.modelrollout.io_ModelDeployment"
    assert snippet["data"][key].strip() == HEALTH_LUA.read_text().strip()
