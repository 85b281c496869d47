"""Retraining Jobs as the operator writes them, and how it reads their ending
back from real-looking Job and Pod objects."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelrollout.api import names as n
from modelrollout.api import parse_spec
from modelrollout.api.ownership import Owner
from modelrollout.kube.jobs import job_observation, with_termination
from modelrollout.kube.manifests import retraining_job
from modelrollout.rollout import RunRetrainingJob

pytestmark = pytest.mark.unit

OWNER = Owner(name="fraud", namespace="ml", uid="u-1")


def _spec() -> Any:
    return parse_spec(
        {
            "model": {"name": "fraud", "registry": {"name": "fraud-model", "alias": "candidate"}},
            "template": {"spec": {"containers": [{"name": "server", "image": "srv:1"}]}},
            "strategy": {"canary": {"steps": [{"setWeight": 50}]}},
            "retraining": {
                "job": {
                    "template": {
                        "metadata": {"labels": {"team": "risk"}},
                        "spec": {
                            "containers": [
                                {
                                    "name": "train",
                                    "image": "srv:1",
                                    "args": ["retrain"],
                                    "env": [
                                        {"name": "MODELROLLOUT_RETRAIN_MARGIN", "value": "9"},
                                        {"name": "RECORDS_DSN", "value": "postgresql://db/x"},
                                    ],
                                }
                            ]
                        },
                    },
                    "activeDeadlineSeconds": 900,
                }
            },
        }
    )


def test_the_job_carries_the_run_env_and_never_the_labels_services_select_on() -> None:
    run = RunRetrainingJob("fraud-retrain-2", 2, (("MODELROLLOUT_RETRAIN_MARGIN", "0.0"),))
    job = retraining_job(OWNER, _spec(), run)
    assert job["metadata"]["name"] == "fraud-retrain-2"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert job["spec"]["activeDeadlineSeconds"] == 900 and job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]
    assert n.LABEL_DEPLOYMENT not in pod["metadata"]["labels"], "a training pod gets no traffic"
    assert pod["metadata"]["labels"][n.LABEL_RETRAINING_RUN] == "2"
    assert pod["metadata"]["labels"]["team"] == "risk"
    assert pod["spec"]["restartPolicy"] == "Never"
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {"RECORDS_DSN": "postgresql://db/x", "MODELROLLOUT_RETRAIN_MARGIN": "0.0"}
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_long_names_are_shortened_to_a_valid_job_name_and_stay_unique() -> None:
    first = n.retraining_job_name("a" * 60, 12)
    second = n.retraining_job_name("a" * 59 + "b", 12)
    assert len(first) <= 63 and len(second) <= 63 and first != second
    assert first.endswith("-retrain-12")


def _failed_job() -> dict[str, Any]:
    return {
        "status": {
            "conditions": [
                {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded"},
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                    "lastTransitionTime": "2026-12-02T10:00:00Z",
                },
            ]
        }
    }


def _pod(message: str, code: int, created: str = "2026-12-02T09:59:00Z") -> dict[str, Any]:
    return {
        "metadata": {"creationTimestamp": created},
        "spec": {
            "containers": [{"name": "train", "env": [{"name": "T", "value": "s3cr3t-token"}]}]
        },
        "status": {
            "containerStatuses": [
                {"name": "train", "state": {"terminated": {"exitCode": code, "message": message}}}
            ]
        },
    }


def test_a_rejected_run_keeps_its_outcome_json_whole() -> None:
    outcome = json.dumps({"accepted": False, "candidate": {"mae": 5.0}, "reason": "worse"})
    observed = with_termination(job_observation("j", 1, _failed_job()), [_pod(outcome, 3)])
    assert observed.state == "Failed" and observed.reason == "BackoffLimitExceeded"
    assert observed.exit_code == 3 and json.loads(observed.message)["candidate"] == {"mae": 5.0}
    assert observed.finished_at is not None


def test_a_crash_log_is_one_line_with_env_values_blanked_from_the_newest_pod() -> None:
    pods = [
        _pod("old attempt", 1, "2026-12-02T09:50:00Z"),
        _pod("Traceback...\nRuntimeError: cannot reach s3cr3t-token", 1),
    ]
    observed = with_termination(job_observation("j", 1, _failed_job()), pods)
    assert observed.message.startswith("RuntimeError: cannot reach")
    assert "s3cr3t-token" not in observed.message


def test_a_job_without_a_finished_condition_is_running() -> None:
    assert job_observation("j", 1, {"status": {"active": 1}}).state == "Running"
    done = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    assert job_observation("j", 1, done).state == "Succeeded"
