"""The retraining loop as one ModelDeployment, for `make demo`'s second story and
the end-to-end test that proves it (tests/e2e/test_retraining_loop.py), so the
demo plays exactly what the test checks.

A breast-cancer classifier, fitted on the table as it was, served from the
registry by two replicas that record every request in the inference-records
store (the DSN from a Secret). Today's traffic has moved: every feature is one
standard deviation higher (the load generator's shift), while the diagnosis of
each row is what it was. Live accuracy shows it; the drift watch starts a
retraining Job, the reference image's `modelrollout retrain`, which reads today's
labelled rows from the same store. Analysis at demo speed against the stack's
Prometheus. Dev and test tooling, not the operator.

No `feature-drift` gate: the candidate is trained on the few hundred rows the
store holds seconds after the drift, and PSI against a reference profile built
from so few rows is noisy (a clean-clone run measured 0.29 on one feature of a
good candidate and rolled it back). Judge such a candidate on accuracy, or
retrain on more rows (`minRows` in the thousands) before gating it on drift.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from kubernetes import client

from modelrollout.devenv.stack import (
    ACCURACY_QUERY,
    RESTRICTED,
    error_rate_query,
    model_server_template,
)

NAME = "diagnosis"
REGISTERED = "diagnosis-model"
ALIAS = "candidate"
# Where the servers and the Job find the store: a Secret, as a user keeps a DSN.
RECORDS_SECRET = "inference-records"  # noqa: S105 - a Secret's name, not a password
# The pod's /tmp (an emptyDir): where the candidate is packaged, and MLflow's HOME.
POD_TMP = "/tmp"  # noqa: S108 - inside the training pod
# How far today's traffic has moved, in standard deviations of each feature.
DRIFT_SHIFT = 1.0
# The drift watch's bound: version 1 on today's traffic is far below this accuracy.
LIVE_ACCURACY_MIN = 0.9
# Clients post each answer's true label this many seconds later, through the Service.
LABEL_DELAY_SECONDS = 2.0
# Requests per second the story's clients send.
RATE = 30.0
# How the operator is told to look at tracked aliases (default 30 s) in the story.
OPERATOR_ENV = {"MODELROLLOUT_REGISTRY_POLL_SECONDS": "2"}

# Its failing on the stable version starts a run.
DRIFT_METRICS = ["live-accuracy"]
_RECORDS = {"secretKeyRef": {"name": RECORDS_SECRET, "key": "dsn"}}
METRICS = [
    {"name": "error-rate", "query": error_rate_query("10s"), "max": 0.05},
    {
        "name": "accuracy-vs-stable",
        "query": ACCURACY_QUERY,
        "compareTo": "stable",
        "maxDecrease": 0.05,
    },
    {"name": "live-accuracy", "query": ACCURACY_QUERY, "min": LIVE_ACCURACY_MIN},
]


def records_secret(dsn: str) -> client.V1Secret:
    return client.V1Secret(
        metadata=client.V1ObjectMeta(name=RECORDS_SECRET), string_data={"dsn": dsn}
    )


def manifest(image: str, prometheus: str, tracking_uri: str) -> dict[str, Any]:
    """The ModelDeployment: no namespace (the caller's), the registry's alias as
    the way in, and a retraining Job that needs to be told only where the rows are."""
    template = model_server_template(image, None, {"MODELSERVER_RECORDS_FLUSH_SECONDS": "0.5"})
    template["spec"]["containers"][0]["env"].append(
        {"name": "MODELSERVER_RECORDS_DSN", "valueFrom": _RECORDS}
    )
    train = {
        "name": "train",
        "image": image,
        "imagePullPolicy": "Never",
        "args": ["retrain"],
        "env": [
            {"name": "MODELROLLOUT_RETRAIN_RECORDS", "valueFrom": _RECORDS},
            {"name": "HOME", "value": POD_TMP},
        ],
        "volumeMounts": [{"name": "tmp", "mountPath": POD_TMP}],
        "securityContext": RESTRICTED,
    }
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": NAME},
        "spec": {
            "replicas": 2,
            "model": {
                "name": NAME,
                "registry": {"name": REGISTERED, "alias": ALIAS, "uri": tracking_uri},
            },
            "template": template,
            "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "10s"}}]}},
            "analysis": {
                "interval": "2s",
                "failureLimit": 2,
                "consecutiveErrorLimit": 100,
                "onNoData": "Pause",
                "prometheus": {"address": prometheus},
                "metrics": copy.deepcopy(METRICS),
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
                "triggers": {"onDrift": True, "driftMetrics": DRIFT_METRICS},
                # The champion's training set is the world as it was.
                "includeOriginalData": False,
                # The drift watch fires within seconds of labelled traffic: at 30 req/s
                # the store holds a few hundred labelled rows by then.
                "minRows": 100,
            },
        },
    }


def figures(onset: datetime, run: dict[str, Any], serving_all: datetime) -> dict[str, float]:
    """Where the time went, in seconds, from a finished run's status
    (`status.retraining.last`): detection (drift onset to the trigger), the Job,
    the rollout (the Job's end to every endpoint on the new version), the total."""
    started = datetime.fromisoformat(run["startedAt"])
    triggered = datetime.fromisoformat(run.get("triggeredAt") or run["startedAt"])
    finished = datetime.fromisoformat(run["finishedAt"])
    return {
        "detection": (triggered - onset).total_seconds(),
        "job": (finished - started).total_seconds(),
        "rollout": (serving_all - finished).total_seconds(),
        "total": (serving_all - onset).total_seconds(),
    }


def summary(run: dict[str, Any], times: dict[str, float]) -> str:
    return (
        f"accuracy {run['champion']['accuracy']:.3f} -> {run['candidate']['accuracy']:.3f} "
        f"on the same held-out rows; detection {times['detection']:.0f} s, "
        f"Job {times['job']:.0f} s, rollout {times['rollout']:.0f} s, "
        f"drift onset to all traffic on the retrained model {times['total']:.0f} s"
    )
