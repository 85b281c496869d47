"""Pods as the API server returns them (JSON dicts, as `kubectl get pod -o json`
shows them) turned into the cause the progress deadline names; and the observe
step putting it into Observed, against an API client that answers from memory."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from kubernetes import client

from modelrollout.api import names as n
from modelrollout.api import parse_spec
from modelrollout.api.ownership import Owner
from modelrollout.kube.observer import observe
from modelrollout.kube.pods import MAX_MESSAGE, pod_cause, replica_failure, revision_pods, summarise
from modelrollout.rollout import PodCause, PodsObservation

pytestmark = pytest.mark.unit

REVISION = "9a1b2e3c4d"
SECRET = "s3cr3t-hunter2"


def pod(
    name: str = "fraud-9a1b2e3c4d-7f6d8-abcde",
    *,
    phase: str = "Pending",
    ready: bool = False,
    scheduled: bool = True,
    containers: list[dict[str, Any]] | None = None,
    init: list[dict[str, Any]] | None = None,
    revision: str = REVISION,
    **status: Any,
) -> dict[str, Any]:
    """A Deployment's pod, shaped as kubelet and the scheduler report it."""
    conditions: list[dict[str, Any]] = [
        {"type": "PodReadyToStartContainers", "status": "True"},
        {"type": "Initialized", "status": "True" if not init else "False"},
        {
            "type": "Ready",
            "status": "True" if ready else "False",
            **({} if ready else {"reason": "ContainersNotReady"}),
        },
        {"type": "ContainersReady", "status": "True" if ready else "False"},
        {"type": "PodScheduled", "status": "True"},
    ]
    if not scheduled:
        conditions = [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient memory. preemption: "
                "0/3 nodes are available: 3 No preemption victims found for incoming pod.",
                "lastProbeTime": None,
                "lastTransitionTime": "2026-12-01T10:00:00Z",
            }
        ]
    body: dict[str, Any] = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": "ml",
            "labels": {
                n.LABEL_DEPLOYMENT: "fraud",
                n.LABEL_REVISION: revision,
                n.LABEL_MANAGED_BY: n.MANAGER,
                "pod-template-hash": "7f6d8",
            },
            "ownerReferences": [{"kind": "ReplicaSet", "name": "fraud-9a1b2e3c4d-7f6d8"}],
        },
        "spec": {
            "containers": [
                {
                    "name": "server",
                    "image": "ghcr.io/acme/modelrollout:0.2",
                    "env": [
                        {"name": "DB_PASSWORD", "value": SECRET},
                        {"name": "LOG_LEVEL", "value": "info"},
                        {"name": "MODEL_URI", "value": "file:///models/fraud-2.skops"},
                        {
                            "name": "API_TOKEN",
                            "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}},
                        },
                    ],
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                }
            ],
            "nodeName": "node-1" if scheduled else None,
        },
        "status": {"phase": phase, "conditions": conditions, "qosClass": "BestEffort", **status},
    }
    if containers is not None:
        body["status"]["containerStatuses"] = containers
    if init is not None:
        body["status"]["initContainerStatuses"] = init
    return body


def container(
    state: dict[str, Any], *, ready: bool = False, last: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "name": extra.pop("name", "server"),
        "state": state,
        "lastState": {"terminated": last} if last else {},
        "ready": ready,
        "restartCount": 3 if last else 0,
        "image": "ghcr.io/acme/modelrollout:0.2",
        "imageID": "",
        "started": "running" in state,
        **extra,
    }


RUNNING = {"running": {"startedAt": "2026-12-01T10:00:05Z"}}
CRASHED = {
    "exitCode": 1,
    "reason": "Error",
    "message": 'Traceback (most recent call last):\n  File "/app/serve.py", line 3\n'
    f"RuntimeError: cannot connect with password {SECRET}\n",
    "startedAt": "2026-12-01T10:00:05Z",
    "finishedAt": "2026-12-01T10:00:07Z",
    "containerID": "containerd://0123",
}

CASES = {
    "image pull back-off": (
        pod(
            containers=[
                container(
                    {
                        "waiting": {
                            "reason": "ImagePullBackOff",
                            "message": 'Back-off pulling image "ghcr.io/acme/modelrollout:0.2"',
                        }
                    }
                )
            ]
        ),
        'ImagePullBackOff: Back-off pulling image "ghcr.io/acme/modelrollout:0.2"',
    ),
    "image pull error": (
        pod(
            containers=[
                container(
                    {
                        "waiting": {
                            "reason": "ErrImagePull",
                            "message": 'failed to pull and unpack image "ghcr.io/acme/'
                            'modelrollout:0.2": failed to resolve reference: not found',
                        }
                    }
                )
            ]
        ),
        'ErrImagePull: failed to pull and unpack image "ghcr.io/acme/modelrollout:0.2": '
        "failed to resolve reference: not found",
    ),
    "crash loop, with the last exit and its log's last line, password blanked": (
        pod(
            phase="Running",
            containers=[
                container(
                    {
                        "waiting": {
                            "reason": "CrashLoopBackOff",
                            "message": "back-off 40s restarting failed container=server "
                            "pod=fraud-9a1b2e3c4d-7f6d8-abcde_ml(uid)",
                        }
                    },
                    last=CRASHED,
                )
            ],
        ),
        "CrashLoopBackOff: container server exited with code 1 (Error): "
        "RuntimeError: cannot connect with password ***",
    ),
    "missing secret": (
        pod(
            containers=[
                container(
                    {
                        "waiting": {
                            "reason": "CreateContainerConfigError",
                            "message": 'secret "api" not found',
                        }
                    }
                )
            ]
        ),
        'CreateContainerConfigError: secret "api" not found',
    ),
    "OOM killed, running again but not ready": (
        pod(
            phase="Running",
            containers=[
                container(RUNNING, last={"exitCode": 137, "reason": "OOMKilled", "startedAt": "x"})
            ],
        ),
        "container server exited with code 137 (OOMKilled)",
    ),
    "readiness probe failing": (
        pod(phase="Running", containers=[container(RUNNING)]),
        "readiness probe not passing (container server)",
    ),
    "unschedulable": (
        pod(scheduled=False),
        "pods unschedulable: 0/3 nodes are available: 3 Insufficient memory.",
    ),
    "evicted": (
        pod(
            phase="Failed",
            reason="Evicted",
            message="The node was low on resource: memory. Threshold quantity: 100Mi.",
        ),
        "Evicted: The node was low on resource: memory. Threshold quantity: 100Mi.",
    ),
    "init container crash loop": (
        pod(
            init=[
                container(
                    {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}},
                    last={"exitCode": 2, "reason": "Error", "message": "no model at file:///m"},
                    name="fetch-model",
                )
            ],
            containers=[container({"waiting": {"reason": "PodInitializing"}})],
        ),
        "Init:CrashLoopBackOff: container fetch-model exited with code 2 (Error): "
        "no model at file:///m",
    ),
    "init container still running": (
        pod(
            init=[container(RUNNING, name="fetch-model")],
            containers=[container({"waiting": {"reason": "PodInitializing"}})],
        ),
        "PodInitializing: init container fetch-model still running",
    ),
    "container being created": (
        pod(containers=[container({"waiting": {"reason": "ContainerCreating"}})]),
        "ContainerCreating",
    ),
    "scheduled, nothing reported yet": (pod(), "Pending"),
}


@pytest.mark.parametrize("name", CASES)
def test_each_pod_names_its_cause(name: str) -> None:
    body, described = CASES[name]
    cause = pod_cause(body)
    assert cause is not None
    assert cause.describe() == described


def test_a_ready_pod_has_no_cause() -> None:
    body = pod(phase="Running", ready=True, containers=[container(RUNNING, ready=True)])
    assert pod_cause(body) is None


def test_an_init_container_that_finished_is_no_cause() -> None:
    done = container({"terminated": {"exitCode": 0, "reason": "Completed"}}, name="fetch-model")
    body = pod(phase="Running", init=[done], containers=[container(RUNNING)])
    cause = pod_cause(body)
    assert cause is not None and cause.kind == "readiness"


def test_messages_are_one_short_line_without_env_values() -> None:
    long_line = "x" * 500
    body = pod(
        phase="Running",
        containers=[
            container(
                {"waiting": {"reason": "CrashLoopBackOff"}},
                last={**CRASHED, "message": f"{SECRET} first\n\n  {long_line}  \n"},
            )
        ],
    )
    cause = pod_cause(body)
    assert cause is not None
    assert cause.last_message == long_line[: MAX_MESSAGE - 3] + "..."
    assert "\n" not in cause.describe()
    # Every message of every case: no env value, but the operator's MODEL_URI may show.
    for case, _described in CASES.values():
        found = pod_cause(case)
        assert found is not None
        assert SECRET not in found.describe()
        assert len(found.message) <= MAX_MESSAGE and len(found.last_message) <= MAX_MESSAGE


def test_the_most_telling_pod_wins_then_the_first_by_name() -> None:
    creating = pod(
        "a-creating", containers=[container({"waiting": {"reason": "ContainerCreating"}})]
    )
    probe = pod("b-probe", phase="Running", containers=[container(RUNNING)])
    unschedulable = pod("c-unschedulable", scheduled=False)
    pull_d = pod(
        "d-pull",
        containers=[container({"waiting": {"reason": "ErrImagePull", "message": "d"}})],
    )
    pull_e = pod(
        "e-pull",
        containers=[container({"waiting": {"reason": "ImagePullBackOff", "message": "e"}})],
    )
    ready = pod("f-ready", phase="Running", ready=True, containers=[container(RUNNING, ready=True)])
    pods = [ready, pull_e, unschedulable, probe, pull_d, creating]
    summary = summarise(pods)
    assert (summary.ready, summary.not_ready) == (1, 5)
    assert summary.cause is not None and summary.cause.describe() == "ErrImagePull: d"
    assert summarise([creating, probe]).cause == PodCause("readiness", container="server")
    assert summarise([creating, unschedulable, probe]).cause is not None
    assert (
        summarise([creating, unschedulable, probe])
        .describe()
        .startswith("0/3 ready: pods unschedulable: 0/3 nodes are available")
    )
    assert summarise([ready]) == PodsObservation(ready=1, not_ready=0, cause=None)


def test_pods_are_grouped_by_revision_and_terminating_ones_left_out() -> None:
    terminating = pod("old-going", revision="0ld0ld0ld0", phase="Running")
    terminating["metadata"]["deletionTimestamp"] = "2026-12-01T10:00:00Z"
    old = pod("old-ready", revision="0ld0ld0ld0", phase="Running", ready=True)
    new = CASES["image pull back-off"][0]
    quota = replica_failure(
        [
            {"type": "Available", "status": "True"},
            {
                "type": "ReplicaFailure",
                "status": "True",
                "reason": "FailedCreate",
                "message": 'pods "fraud-b2-x" is forbidden: exceeded quota: ml, requested: '
                "cpu=2, used: cpu=8, limited: cpu=8",
            },
        ]
    )
    assert quota is not None
    grouped = revision_pods([terminating, old, new], {"b2b2b2b2b2": quota})
    assert grouped["0ld0ld0ld0"] == PodsObservation(ready=1, not_ready=0)
    assert grouped[REVISION].not_ready == 1
    cause = grouped[REVISION].cause
    assert cause is not None and cause.reason == "ImagePullBackOff"
    # A revision whose ReplicaSet may not create a single pod.
    assert grouped["b2b2b2b2b2"].describe() == (
        '0/0 ready: FailedCreate: pods "fraud-b2-x" is forbidden: exceeded quota: ml, '
        "requested: cpu=2, used: cpu=8, limited: cpu=8"
    )
    assert replica_failure([{"type": "ReplicaFailure", "status": "False"}]) is None


# The observe step, against an ApiClient answering from memory (no network).

OWNER = Owner(name="fraud", namespace="ml", uid="uid-1")
SPEC = parse_spec(
    {
        "replicas": 2,
        "model": {"name": "fraud", "version": "2"},
        "template": {"spec": {"containers": [{"name": "server", "image": "srv:2"}]}},
        "strategy": {"canary": {"steps": [{"setWeight": 50}]}},
    }
)


def deployment(revision: str, replicas: int, available: int, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": f"fraud-{revision}",
            "namespace": "ml",
            "labels": {
                n.LABEL_DEPLOYMENT: "fraud",
                n.LABEL_MANAGED_BY: n.MANAGER,
                n.LABEL_REVISION: revision,
                n.LABEL_MODEL_VERSION: "2",
            },
            "ownerReferences": [
                {"apiVersion": n.API_VERSION, "kind": n.KIND, "name": "fraud", "uid": "uid-1"}
            ],
            "creationTimestamp": "2026-12-01T10:00:00Z",
        },
        "spec": {"replicas": replicas, "selector": {"matchLabels": {}}, "template": {}},
        "status": {"readyReplicas": available, "availableReplicas": available, **status},
    }


class _Raw:
    def __init__(self, body: dict[str, Any]) -> None:
        self.status = 200
        self.reason = "OK"
        self.data = json.dumps(body).encode()
        self.headers = {"content-type": "application/json"}


class _Response(client.rest.RESTResponse):
    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(_Raw(body))


# The objects observe() reads by name (the shadow ConfigMap, the HPA).
NAMED_READS = frozenset({"configmaps", "horizontalpodautoscalers"})


class MemoryApi(client.ApiClient):
    """Answers list calls from `objects` (path suffix -> items) and records them."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]]) -> None:
        super().__init__(client.Configuration(host="http://in-memory.invalid"))
        self.objects = objects
        self.calls: list[str] = []

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        path = url.split("?")[0]
        self.calls.append(f"{method} {path.removeprefix('http://in-memory.invalid')}")
        parent, kind = path.rsplit("/", 2)[-2:]
        if parent in NAMED_READS:  # one object by name: none was given, so it is absent
            raise client.ApiException(status=404, reason="Not Found")
        return _Response({"kind": "List", "items": copy.deepcopy(self.objects.get(kind, []))})


def test_observe_reads_the_pods_only_while_a_revision_lacks_available_pods() -> None:
    api = MemoryApi({"deployments": [deployment("0ld0ld0ld0", 2, 2)]})
    observed = observe(api, OWNER, SPEC, 1, {})
    assert [r.pods for r in observed.revisions] == [None]
    assert not any(call.endswith("/pods") for call in api.calls)


def test_observe_puts_the_pods_cause_into_the_revision_observation() -> None:
    quota_message = 'pods "fraud-c3c3c3c3c3-x" is forbidden: exceeded quota: ml'
    api = MemoryApi(
        {
            "deployments": [
                deployment("0ld0ld0ld0", 2, 2),
                deployment(REVISION, 1, 0),
                deployment(
                    "c3c3c3c3c3",
                    1,
                    0,
                    conditions=[
                        {
                            "type": "ReplicaFailure",
                            "status": "True",
                            "reason": "FailedCreate",
                            "message": quota_message,
                        }
                    ],
                ),
            ],
            "pods": [
                pod("old-ready", revision="0ld0ld0ld0", phase="Running", ready=True),
                CASES["crash loop, with the last exit and its log's last line, password blanked"][
                    0
                ],
            ],
        }
    )
    observed = observe(api, OWNER, SPEC, 1, {})
    assert "GET /api/v1/namespaces/ml/pods" in api.calls
    old = observed.revision("0ld0ld0ld0")
    assert old is not None and old.pods is None  # nothing missing there: not summarised
    new = observed.revision(REVISION)
    assert new is not None and new.pods is not None
    assert new.pods.describe() == (
        "0/1 ready: CrashLoopBackOff: container server exited with code 1 (Error): "
        "RuntimeError: cannot connect with password ***"
    )
    blocked = observed.revision("c3c3c3c3c3")
    assert blocked is not None and blocked.pods is not None
    assert blocked.pods.describe() == f"0/0 ready: FailedCreate: {quota_message}"
