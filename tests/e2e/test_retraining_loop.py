"""The whole loop on real pods: a model that rots is retrained on the labels its
own traffic collected, and the better model replaces it without anyone editing
anything.

Version 1 was fitted when 40% of the benign cases were labelled malignant; today
the labels are right (the world's labelling moved on: concept drift, the inputs
look as usual). Two replicas serve it from the registry and record every request
in the inference-records store (a real PostgreSQL); clients post the true label
of each answer two seconds later, through the Service, so it reaches any replica.
Live accuracy, computed from the joined rows of both replicas, sits near 0.80;
the drift watch's `live-accuracy` bound (0.9) fails, which starts one retraining
Job: the reference image's `modelrollout retrain` reads the labelled rows from
the store, beats version 1 on the same held-out rows, and registers version 2
behind the tracked alias. The operator canaries it, compares it live with
version 1 (`accuracy-vs-stable`) and promotes it. The test prints where the time
went: detection, the Job, the rollout.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from modelrollout.devenv.stack import (
    ACCURACY_QUERY,
    RESTRICTED,
    ServingStack,
    model_server_template,
)
from support.packages import DATASET, packaged_classifier
from support.rollouts import Rollouts
from support.serving import ACCURACY_VS_STABLE, ERROR_RATE, RATE, wait_all_traffic_on

pytestmark = pytest.mark.e2e
# The real operator (tests/conftest.py) looks at tracked aliases every 2 s instead of 30.
OPERATOR_ENV = {"MODELROLLOUT_REGISTRY_POLL_SECONDS": "2"}

REGISTERED = "breast-cancer-model"
MODEL = "breast-cancer"
SECRET = "inference-records"
LIVE_ACCURACY = {"name": "live-accuracy", "query": ACCURACY_QUERY, "min": 0.9}
RECORDS_ENV = {
    "name": "MODELSERVER_RECORDS_DSN",
    "valueFrom": {"secretKeyRef": {"name": SECRET, "key": "dsn"}},
}


def _model_deployment(stack: ServingStack, tracking_uri: str) -> dict[str, Any]:
    template = model_server_template(
        stack.image, None, {"MODELSERVER_RECORDS_FLUSH_SECONDS": "0.5"}
    )
    template["spec"]["containers"][0]["env"].append(RECORDS_ENV)
    train = {
        "name": "train",
        "image": stack.image,
        "imagePullPolicy": "Never",
        "args": ["retrain"],
        "env": [
            {**RECORDS_ENV, "name": "MODELROLLOUT_RETRAIN_RECORDS"},
            {"name": "HOME", "value": "/tmp"},
        ],
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "securityContext": RESTRICTED,
    }
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": MODEL},
        "spec": {
            "replicas": 2,
            "model": {
                "name": MODEL,
                "registry": {"name": REGISTERED, "alias": "candidate", "uri": tracking_uri},
            },
            "template": template,
            "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "10s"}}]}},
            "analysis": {
                "interval": "2s",
                "failureLimit": 2,
                "consecutiveErrorLimit": 100,
                "onNoData": "Pause",
                "prometheus": {"address": stack.prometheus.url},
                "metrics": copy.deepcopy([ERROR_RATE, ACCURACY_VS_STABLE, LIVE_ACCURACY]),
            },
            "rollback": {"automatic": True},
            "retraining": {
                "job": {
                    "template": {
                        "spec": {
                            "containers": [train],
                            "volumes": [{"name": "tmp", "emptyDir": {}}],
                        }
                    },
                    "activeDeadlineSeconds": 600,
                },
                "triggers": {"onDrift": True, "driftMetrics": ["live-accuracy"]},
                # The champion's own training labels are the outdated ones.
                "includeOriginalData": False,
                "minRows": 200,
            },
        },
    }


def _seconds(start: datetime, end: str | datetime) -> float:
    end_time = datetime.fromisoformat(end) if isinstance(end, str) else end
    return (end_time - start).total_seconds()


def test_a_rotting_model_is_retrained_on_its_own_labelled_traffic_and_replaced(
    rollouts: Rollouts, stack: ServingStack, tmp_path: Path
) -> None:
    registry = stack.start_registry()
    records = stack.start_records()
    rollouts.core.create_namespaced_secret(
        rollouts.namespace,
        {"metadata": {"name": SECRET}, "stringData": {"dsn": records.dsn}},
    )
    first = packaged_classifier(tmp_path / "v1", label_bug=0.4).register(
        registry.url, REGISTERED, "candidate"
    )
    assert first.version == "1"
    rollouts.create(_model_deployment(stack, registry.url))
    rollouts.wait_phase(MODEL, "Healthy", timeout=240)

    onset = datetime.now(UTC)  # labelled traffic begins: the rot becomes measurable
    traffic = stack.traffic(
        rollouts.namespace, MODEL, rate=RATE, dataset=DATASET, model=MODEL,
        feedback_share=1.0, feedback_via_service=True, feedback_delay=2.0,
    )  # fmt: skip
    run = rollouts.wait_status(
        MODEL,
        "a retraining run started by the accuracy drift",
        lambda s: (
            ((s.get("retraining") or {}).get("active") or {}).get("trigger") is not None
            or ((s.get("retraining") or {}).get("last") or {}).get("number") == 1
        ),
        timeout=300,
    )
    retraining = run["retraining"]
    started = retraining.get("active") or retraining["last"]
    assert started["trigger"] == "Drift" and "live-accuracy" in started["cause"], started

    status = rollouts.wait_status(
        MODEL,
        "run 1 finished",
        lambda s: ((s.get("retraining") or {}).get("last") or {}).get("number") == 1,
        timeout=600,
    )
    last = status["retraining"]["last"]
    assert last["outcome"] == "Accepted", last
    assert last["championVersion"] == "1" and last["candidateVersion"] == "2", last
    assert last["candidate"]["accuracy"] > last["champion"]["accuracy"] + 0.1, last

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
    answered = traffic.stats()
    traffic.stop()
    for version in ("1", "2"):
        stats = answered[version]
        assert stats.failed == 0, f"version {version} failed requests: {stats.codes}"
        assert stats.feedback["200"] > 0, f"version {version}'s labels joined: {stats.feedback}"
    # Each label went to whichever replica the Service chose, and none was lost.
    refused = {c: k for v in answered.values() for c, k in v.feedback.items() if c != "200"}
    assert not refused, refused

    promoted = next(h for h in status["history"] if h["revision"] == status["stableRevision"])
    figures = {
        "detection": _seconds(onset, last["triggeredAt"] or last["startedAt"]),
        "job": _seconds(datetime.fromisoformat(last["startedAt"]), last["finishedAt"]),
        "rollout": _seconds(datetime.fromisoformat(last["finishedAt"]), serving_all),
        "total": _seconds(onset, serving_all),
        "promotedAt": promoted.get("promotedAt"),
    }
    print(
        "\n[e2e] retraining loop: live accuracy {:.3f} -> {:.3f} (held out); "
        "detection {detection:.0f} s, Job {job:.0f} s, rollout {rollout:.0f} s, "
        "drift onset to all traffic on the retrained model {total:.0f} s".format(
            last["champion"]["accuracy"], last["candidate"]["accuracy"], **figures
        )
    )
