"""Retraining Jobs for real: the real operator, a real MLflow server, the API
server's Job controller and a training pod on the real node.

`kubectl modelrollout retrain` starts run 1; its container (a stand-in for the
user's training image, from the model-server image) reads what the operator told
it and writes an outcome to its termination message: the first run says its
candidate was worse (exit 3), the second crashes. The operator must report each
as what it was (Rejected with both sides' metrics, Failed with the crash's last
line), never touch what serves, and refuse a `retrain` while one runs. Then the
reference image's own `modelrollout retrain` runs as the Job (`args: [retrain]`
plus where the rows are): it fetches the champion the operator named from the
registry, retrains, compares on the same held-out rows, registers the better
candidate behind the tracked alias, and the operator reports the real figures and
rolls version 2 out.

The serving pods are KWOK's (they serve nothing; what is judged is the operator's
work on Jobs); the model servers' and the training program's own behaviour is
tested in their tiers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from modelrollout.api import names as n
from modelrollout.devenv.registry import RegistryServer
from modelrollout.devenv.stack import RESTRICTED
from modelrollout.devenv.usermodels import TARGET, labelled_rows, packaged_classifier
from support.kube import ClusterUnderTest
from support.operator import OperatorProcess, running_operator
from support.realnode import workload_image
from support.rollouts import Rollouts, example

pytestmark = pytest.mark.integration

MODEL = "churn-model"

# Run 1: a rejection naming the champion it was told; run 2: a crash.
TRAINING = """
import json, os, sys, time
env = {k: v for k, v in os.environ.items() if k.startswith("MODELROLLOUT_RETRAIN_")}
if env["MODELROLLOUT_RETRAIN_RUN"] == "1":
    outcome = {
        "accepted": False, "metric": "accuracy",
        "candidate": {"accuracy": 0.71}, "champion": {"accuracy": 0.9},
        "reason": "worse than " + env["MODELROLLOUT_RETRAIN_CHAMPION"],
        "told": env,
    }
    open(env["MODELROLLOUT_RETRAIN_OUTCOME_PATH"], "w").write(json.dumps(outcome))
    time.sleep(3)  # long enough for a second `retrain` to find it running
    sys.exit(3)
print("Traceback (most recent call last):")
print("RuntimeError: the feature store is unreachable")
sys.exit(1)
"""


@pytest.fixture
def registry(tmp_path: Path, kube: ClusterUnderTest) -> Iterator[RegistryServer]:
    # One URL for the operator and the pods: the reference image's run fetches the
    # champion from it.
    with RegistryServer(tmp_path / "mlflow", kube.cluster.network) as server:
        yield server


@pytest.fixture
def registry_operator(
    crds: ClusterUnderTest, namespace: str, registry: RegistryServer, tmp_path: Path
) -> Iterator[OperatorProcess]:
    env = {"MODELROLLOUT_REGISTRY_POLL_SECONDS": "2"}
    with running_operator(crds, namespace, tmp_path, env=env) as process:
        yield process
    print(f"--- operator log ---\n{process.log()[-8000:]}")


def _retraining(kube: ClusterUnderTest, registry_url: str) -> dict[str, Any]:
    body = example("retraining")
    spec = body["spec"]
    spec.pop("analysis")
    spec["replicas"] = 1
    spec["strategy"] = {"canary": {"steps": [{"setWeight": 50}]}}
    spec["model"]["registry"]["uri"] = registry_url
    container = {
        "name": "train",
        "image": workload_image(kube),
        "imagePullPolicy": "Never",
        "command": ["python3", "-c", TRAINING],
        "securityContext": RESTRICTED,
    }
    spec["retraining"] = {
        "job": {"template": {"spec": {"containers": [container]}}, "activeDeadlineSeconds": 300},
        "triggers": {"onDrift": False},
    }
    return body


def _last(status: dict[str, Any]) -> dict[str, Any]:
    return (status.get("retraining") or {}).get("last") or {}


def test_a_retrain_runs_a_job_whose_rejection_and_crash_are_reported_as_such(
    registry_operator: OperatorProcess,
    registry: RegistryServer,
    kube: ClusterUnderTest,
    namespace: str,
    tmp_path: Path,
) -> None:
    rollouts = Rollouts(registry_operator.cluster, namespace)
    champion = packaged_classifier(tmp_path / "v1").register(registry.url, MODEL, "candidate")
    rollouts.create(_retraining(kube, registry.url))
    serving = rollouts.wait_phase("churn", "Healthy")

    said = rollouts.cli("retrain", "churn").stdout
    assert "retrain applied" in said, said
    refused = rollouts.cli("retrain", "churn", check=False)
    assert refused.returncode == 3 and "is still running" in refused.stderr, refused.stderr

    status = rollouts.wait_status(
        "churn", "run 1 reported", lambda s: _last(s).get("number") == 1, timeout=120
    )
    last = _last(status)
    assert last["outcome"] == "Rejected", last
    assert last["trigger"] == "Manual" and last["championVersion"] == champion.version
    assert last["message"] == f"worse than models:/{MODEL}/{champion.version}"
    assert last["candidate"] == {"accuracy": 0.71} and last["champion"] == {"accuracy": 0.9}
    assert "candidateVersion" not in last, "a rejected candidate is not registered"
    batch = client.BatchV1Api(kube.api)
    (job,) = batch.list_namespaced_job(
        namespace, label_selector=f"{n.LABEL_RETRAINING_OF}=churn"
    ).items
    assert job.metadata.name == "churn-retrain-1"
    pods = rollouts.core.list_namespaced_pod(
        namespace, label_selector=f"{n.LABEL_RETRAINING_RUN}=1"
    )
    (pod,) = pods.items
    told = json.loads(pod.status.container_statuses[0].state.terminated.message)["told"]
    assert told["MODELROLLOUT_RETRAIN_ALIAS"] == "candidate"
    assert told["MODELROLLOUT_RETRAIN_REGISTERED_NAME"] == MODEL
    assert n.LABEL_DEPLOYMENT not in (pod.metadata.labels or {}), "no Service selects it"

    rollouts.cli("retrain", "churn")
    status = rollouts.wait_status(
        "churn", "run 2 reported", lambda s: _last(s).get("number") == 2, timeout=120
    )
    last = _last(status)
    assert last["outcome"] == "Failed", last
    assert "RuntimeError: the feature store is unreachable" in last["message"], last
    assert "code 1" in last["message"], last
    assert status["stableRevision"] == serving["stableRevision"], "what serves is unchanged"
    assert status["stableVersion"] == champion.version


def test_the_reference_images_retrain_registers_a_better_candidate_that_then_rolls_out(
    registry_operator: OperatorProcess,
    registry: RegistryServer,
    kube: ClusterUnderTest,
    namespace: str,
    tmp_path: Path,
) -> None:
    """`args: [retrain, --target, ...]`: everything else comes from the operator's env
    (the champion, the registry and alias, min rows, the outcome path) and the
    template's MODELROLLOUT_RETRAIN_DATA. The champion was fitted on bad labels, the
    fresh rows are right: the candidate wins on the same held-out rows, is registered
    behind the tracked alias, and the operator rolls it out like any new version."""
    rollouts = Rollouts(registry_operator.cluster, namespace)
    champion = packaged_classifier(tmp_path / "v1", label_bug=0.4)
    first = champion.register(registry.url, MODEL, "candidate")
    fresh = labelled_rows()
    rollouts.core.create_namespaced_config_map(
        namespace,
        {"metadata": {"name": "fresh-rows"}, "data": {"fresh.csv": fresh.to_csv(index=False)}},
    )
    body = _retraining(kube, registry.url)
    # The champion's own training labels are the bad ones: fresh rows only.
    body["spec"]["retraining"]["includeOriginalData"] = False
    pod_spec = body["spec"]["retraining"]["job"]["template"]["spec"]
    pod_spec["volumes"] = [
        {"name": "fresh", "configMap": {"name": "fresh-rows"}},
        {"name": "tmp", "emptyDir": {}},
    ]
    (container,) = pod_spec["containers"]
    del container["command"]
    container["args"] = ["retrain", "--target", TARGET]
    container["env"] = [
        {"name": "MODELROLLOUT_RETRAIN_DATA", "value": "/fresh/fresh.csv"},
        {"name": "HOME", "value": "/tmp"},
    ]
    container["volumeMounts"] = [
        {"name": "fresh", "mountPath": "/fresh", "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    rollouts.create(body)
    rollouts.wait_phase("churn", "Healthy")

    rollouts.cli("retrain", "churn")
    status = rollouts.wait_status(
        "churn", "run 1 reported", lambda s: _last(s).get("number") == 1, timeout=300
    )
    last = _last(status)
    assert last["outcome"] == "Accepted", last
    assert last["championVersion"] == first.version and last["metric"] == "accuracy"
    assert last["message"].startswith("accepted"), last
    # Real figures, on the same held-out rows, for both models.
    assert set(last["candidate"]) == set(last["champion"]) == {"accuracy", "f1_macro"}
    assert last["candidate"]["accuracy"] > last["champion"]["accuracy"], last
    assert last["candidateVersion"] == "2"

    # The candidate entered through the alias: a rollout to version 2, promoted.
    status = rollouts.wait_status(
        "churn", "version 2 promoted", lambda s: s.get("stableVersion") == "2", timeout=180
    )
    assert status["phase"] == "Healthy", status
