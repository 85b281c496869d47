"""A new user's first run, as the README's operator section shows it:
`kubectl apply -f crds/`, then `modelrollout run` with no flags. That installs
Kopf's peering CRDs but no peering object (the Helm chart makes it), and Kopf,
given a peering name, would wait for the object forever and say nothing. The
operator runs alone instead, with a WARNING naming the object and how to create
it; replicas running that way join the object once it is made; and with
`--require-peering` (the chart's setting) it waits, with an ERROR, and acts once
the object exists."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from modelrollout.devenv.tools import REPO_ROOT
from support.kube import ClusterUnderTest
from support.operator import OperatorProcess
from support.rollouts import Rollouts, plain_canary
from support.waiting import wait_for

pytestmark = pytest.mark.integration

PEERING = "modelrollout"
# Kopf says this when a replica that started paused (peering mandatory) acts.
ACTING = "Resuming operations after the pause"
# Kopf says this when a replica sees a peer with a higher priority.
PAUSED = "Pausing operations in favour of"
# Short, so a replica running alone joins a new peering object within seconds
# (it rewrites its record every lifetime minus 5-10 s; the default is 60 s).
LIFETIME_SECONDS = 15


@pytest.fixture
def operators(tmp_path: Path) -> Iterator[list[OperatorProcess]]:
    """The operators a test starts; stopped at the end, their logs printed."""
    started: list[OperatorProcess] = []
    yield started
    for process in started:
        process.stop()
        print(f"--- {process.log_path.name} ---\n{process.log()[-6000:]}")


def start(operators: list[OperatorProcess], operator: OperatorProcess) -> OperatorProcess:
    operators.append(operator)
    operator.start()
    return operator


def line_with(log: str, *parts: str) -> str | None:
    return next((line for line in log.splitlines() if all(p in line for p in parts)), None)


def standalone_warning(log: str, namespace: str) -> str | None:
    return line_with(
        log,
        " WARNING ",
        f"No KopfPeering {PEERING!r} in namespace {namespace} found: this replica runs standalone",
    )


def acted_on(process: OperatorProcess, namespace: str, name: str) -> bool:
    """The operator logs each status it writes as `<ns>/<name> <Reason>: ...`."""
    return f"{namespace}/{name} " in process.log()


def peers(kube: ClusterUnderTest, namespace: str) -> dict[str, Any]:
    body = client.CustomObjectsApi(kube.api).get_namespaced_custom_object(
        "kopf.dev", "v1", namespace, "kopfpeerings", PEERING
    )
    return dict(body.get("status") or {})


def test_apply_crds_then_run_without_flags_rolls_out_and_warns_it_runs_alone(
    kube: ClusterUnderTest, namespace: str, operators: list[OperatorProcess], tmp_path: Path
) -> None:
    # Exactly the README's two commands: plain (client-side) apply of crds/, then
    # `modelrollout run` with no flag (the namespace comes from the environment,
    # so that this test's operator stays out of the other tests' namespaces).
    kube.kubectl("apply", "-f", str(REPO_ROOT / "crds"))
    kube.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    operator = start(
        operators,
        OperatorProcess(kube, namespace, tmp_path / "operator.log", options=(),
                        namespace_from_env=True),
    )  # fmt: skip

    rollouts = Rollouts(kube, namespace)
    rollouts.create(plain_canary("first-run", [{"setWeight": 50}], replicas=2))
    status = rollouts.wait_phase("first-run", "Healthy")
    assert status["stableVersion"] == "1"
    warning = standalone_warning(operator.log(), namespace)
    assert warning, "no WARNING saying the operator runs without a peering object"
    assert "a second replica started the same way would act" in warning
    assert "pass --standalone" in warning and "kubectl apply -f -" in warning
    assert ACTING not in operator.log(), "the operator waited for peering"


def test_replicas_running_alone_join_the_peering_object_made_as_the_warning_says(
    crds: ClusterUnderTest, namespace: str, operators: list[OperatorProcess], tmp_path: Path
) -> None:
    env = {"MODELROLLOUT_PEERING_LIFETIME_SECONDS": str(LIFETIME_SECONDS)}
    alone = start(
        operators,
        OperatorProcess(crds, namespace, tmp_path / "alone.log", options=("--priority", "100"),
                        env=env),
    )  # fmt: skip
    warning = wait_for(
        lambda: standalone_warning(alone.log(), namespace), timeout=60, what="the warning"
    )

    # The command the warning gives, run as given, with the cluster's kubectl.
    commands = re.findall(r"echo '\{.*?\}' \| kubectl apply -f -", warning)
    assert len(commands) == 1, warning
    kubectl_dir = crds.cluster.tools.kubectl.parent
    subprocess.run(
        ["sh", "-c", commands[0]],
        env={**os.environ, "PATH": f"{kubectl_dir}{os.pathsep}{os.environ['PATH']}",
             "KUBECONFIG": str(crds.kubeconfig)},
        check=True, capture_output=True,
    )  # fmt: skip
    wait_for(
        lambda: peers(crds, namespace),
        timeout=LIFETIME_SECONDS + 30,
        what="the replica running alone writing its record into the new object",
    )

    # A second replica now finds the object: it peers, and the first one pauses in
    # favour of its higher priority, so from here on only one of them acts.
    second = start(
        operators,
        OperatorProcess(crds, namespace, tmp_path / "second.log", options=("--priority", "200"),
                        env=env),
    )  # fmt: skip
    wait_for(lambda: ACTING in second.log(), timeout=60, what="the second replica acting")
    wait_for(
        lambda: PAUSED in alone.log(),
        timeout=LIFETIME_SECONDS + 30,
        what="the first replica pausing in favour of the second",
    )
    assert standalone_warning(second.log(), namespace) is None
    rollouts = Rollouts(crds, namespace)
    rollouts.create(plain_canary("joined", [{"setWeight": 50}], replicas=2))
    rollouts.wait_phase("joined", "Healthy")
    assert acted_on(second, namespace, "joined")
    assert not acted_on(alone, namespace, "joined"), "the paused replica acted too"


def test_required_peering_waits_with_an_error_and_acts_once_the_object_exists(
    crds: ClusterUnderTest, namespace: str, operators: list[OperatorProcess], tmp_path: Path
) -> None:
    operator = start(
        operators,
        OperatorProcess(crds, namespace, tmp_path / "required.log",
                        options=("--require-peering",)),
    )  # fmt: skip
    error = wait_for(
        lambda: line_with(
            operator.log(),
            " ERROR ",
            f"No KopfPeering {PEERING!r} in namespace {namespace} found, and peering is required",
        ),
        timeout=60,
        what="the error naming the missing peering object",
    )
    assert "acts on nothing until it exists" in error
    rollouts = Rollouts(crds, namespace)
    rollouts.create(plain_canary("waits", [{"setWeight": 50}], replicas=2))
    client.CustomObjectsApi(crds.api).create_namespaced_custom_object(
        "kopf.dev", "v1", namespace, "kopfpeerings",
        {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": PEERING}},
    )  # fmt: skip
    rollouts.wait_phase("waits", "Healthy")
    log = operator.log()
    # "Resuming" is only said by a replica that was paused (peering mandatory),
    # and it came before the first status the operator wrote.
    assert ACTING in log, "the replica never paused"
    assert log.index(ACTING) < log.index(f"{namespace}/waits ")
