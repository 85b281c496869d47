"""What the pods of each revision say about why they are not ready. Pure: Pod
objects as the API server returns them (JSON dicts, camelCase) in, the decision
core's PodsObservation out, so every cause is unit-tested on real-looking pods.

The observer reads the pods only while some revision has fewer available pods
than asked for, and the CLI reads them for `status`; both summarise them here.

Of the pods that are not ready, the most telling cause wins (then the first pod
by name, so the same pods always give the same message):
  1. a container waiting for a reason other than starting up (ImagePullBackOff,
     ErrImagePull, CrashLoopBackOff with its last exit, CreateContainerConfigError...)
  2. a container whose last run ended (lastState.terminated: exit code, reason, message)
  3. the pod failed (Evicted...)
  4. the ReplicaSet could not create pods (the Deployment's ReplicaFailure condition)
  5. unschedulable (PodScheduled=False, with the scheduler's message up to its
     words on preemption)
  6. running but not ready: the readiness probe does not pass
  7. still starting (ContainerCreating, PodInitializing, Pending)

Messages are written by kubelet, the scheduler and the container itself (its
termination message, or with FallbackToLogsOnError the tail of its log), so
they are cut to one line (a log's last one: a Python traceback's exception) of
at most MAX_MESSAGE characters, and any literal env value of the pod's
containers (other than the MODEL_* the operator sets from spec.model) is blanked
out, in case a crash printed its configuration. Env values from Secrets are not
in the pod and cannot be blanked: a program that prints its secrets when it
dies leaks them into its termination message whatever reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from modelrollout.api import names as n
from modelrollout.rollout import PodCause, PodCauseKind, PodsObservation

MAX_MESSAGE: Final = 200
# Shorter values ("1", "true", "info") are not secrets, and blanking them would
# garble every message.
MIN_REDACTED_LENGTH: Final = 4
REDACTED: Final = "***"
# Waiting reasons that mean "not there yet", not "something is wrong".
STARTING_REASONS: Final = frozenset({"ContainerCreating", "PodInitializing"})

_RANK: Final[dict[PodCauseKind, int]] = {
    "waiting": 0,
    "terminated": 1,
    "failed": 2,
    "not-created": 3,
    "unschedulable": 4,
    "readiness": 5,
    "starting": 6,
}

Pod = Mapping[str, Any]


def revision_pods(
    pods: Iterable[Pod], failures: Mapping[str, PodCause] | None = None
) -> dict[str, PodsObservation]:
    """revision -> its pods' summary, by the modelrollout.io/revision label.

    Pods being deleted are left out (they are on their way out, not trouble).
    `failures`: per revision, why its ReplicaSet could not create pods (see
    replica_failure); it counts as a cause too, and names one for a revision
    whose pods do not exist.
    """
    grouped: dict[str, list[Pod]] = {}
    for pod in pods:
        metadata = pod.get("metadata") or {}
        revision = (metadata.get("labels") or {}).get(n.LABEL_REVISION)
        if revision is None or metadata.get("deletionTimestamp"):
            continue
        grouped.setdefault(revision, []).append(pod)
    failures = failures or {}
    return {
        revision: summarise(grouped.get(revision, []), failures.get(revision))
        for revision in grouped.keys() | failures.keys()
    }


def summarise(pods: Iterable[Pod], failure: PodCause | None = None) -> PodsObservation:
    """Counts and the most telling cause of one revision's pods."""
    ready = not_ready = 0
    causes: list[tuple[int, str, PodCause]] = []
    if failure is not None:
        causes.append((_RANK[failure.kind], "", failure))
    for pod in pods:
        cause = pod_cause(pod)
        if cause is None:
            ready += 1
            continue
        not_ready += 1
        name = str((pod.get("metadata") or {}).get("name", ""))
        causes.append((_RANK[cause.kind], name, cause))
    best = min(causes, key=lambda found: (found[0], found[1]), default=None)
    return PodsObservation(ready=ready, not_ready=not_ready, cause=best[2] if best else None)


def pod_cause(pod: Pod) -> PodCause | None:
    """Why this pod is not ready; None when it is."""
    status = pod.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    if (conditions.get("Ready") or {}).get("status") == "True":
        return None
    secrets = env_values(pod)

    def clean(text: Any) -> str:
        return clean_message(text, secrets)

    if status.get("phase") == "Failed":
        return PodCause(
            "failed",
            reason=str(status.get("reason") or "Failed"),
            message=clean(status.get("message")),
        )
    scheduled = conditions.get("PodScheduled") or {}
    if scheduled.get("status") == "False":
        # The scheduler appends why preemption would not help either: noise here.
        message = str(scheduled.get("message") or "").split(" preemption:")[0]
        return PodCause(
            "unschedulable", reason="Unschedulable", message=clean(message.rstrip(" ,"))
        )
    found = [
        cause
        for key, init in (("initContainerStatuses", True), ("containerStatuses", False))
        for container in status.get(key) or []
        if (cause := _container_cause(container, init=init, clean=clean)) is not None
    ]
    if found:
        return min(found, key=lambda cause: _RANK[cause.kind])
    return PodCause(
        "starting", reason=str(status.get("reason") or status.get("phase") or "Pending")
    )


def _container_cause(
    container: Mapping[str, Any], *, init: bool, clean: Callable[[Any], str]
) -> PodCause | None:
    name = str(container.get("name", ""))
    state = container.get("state") or {}
    last = (container.get("lastState") or {}).get("terminated")
    prefix = "Init:" if init else ""  # kubectl's mark of an init container's reasons
    waiting = state.get("waiting")
    if waiting is not None:
        reason = str(waiting.get("reason") or "Waiting")
        if reason in STARTING_REASONS:
            return PodCause("starting", reason=prefix + reason, container=name)
        if last is None or reason != "CrashLoopBackOff":
            return PodCause(
                "waiting",
                reason=prefix + reason,
                message=clean(waiting.get("message")),
                container=name,
            )
        # CrashLoopBackOff: why it keeps dying says more than the back-off's message.
        return PodCause(
            "waiting",
            reason=prefix + reason,
            container=name,
            exit_code=_int(last.get("exitCode")),
            last_reason=str(last.get("reason") or ""),
            last_message=clean(last.get("message")),
        )
    terminated = state.get("terminated")
    if init and terminated is not None and _int(terminated.get("exitCode")) == 0:
        return None  # an init container that did its job
    ended = terminated or last
    if ended is not None and not container.get("ready"):
        return PodCause(
            "terminated",
            reason=prefix + str(ended.get("reason") or "") if ended.get("reason") else "",
            message=clean(ended.get("message")),
            container=name,
            exit_code=_int(ended.get("exitCode")),
        )
    if "running" in state and init:
        return PodCause(
            "starting", reason="PodInitializing", message=f"init container {name} still running"
        )
    if "running" in state and not container.get("ready"):
        return PodCause("readiness", container=name)
    return None


def replica_failure(conditions: Iterable[Mapping[str, Any]]) -> PodCause | None:
    """The Deployment's ReplicaFailure condition (pods its ReplicaSet may not create:
    a quota, an admission policy), if true."""
    for condition in conditions:
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            return PodCause(
                "not-created",
                reason=str(condition.get("reason") or "ReplicaFailure"),
                message=clean_message(condition.get("message"), frozenset()),
            )
    return None


def env_values(pod: Pod) -> frozenset[str]:
    spec = pod.get("spec") or {}
    values = set()
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            for variable in container.get("env") or []:
                value = variable.get("value")
                if (
                    isinstance(value, str)
                    and len(value) >= MIN_REDACTED_LENGTH
                    and variable.get("name") not in n.INJECTED_ENV
                ):
                    values.add(value)
    return frozenset(values)


def clean_message(text: Any, secrets: frozenset[str]) -> str:
    if not isinstance(text, str):
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = lines[-1] if lines else ""
    # Longest first, so a value that contains another is blanked whole.
    for secret in sorted(secrets, key=len, reverse=True):
        line = line.replace(secret, REDACTED)
    line = " ".join(line.split())
    return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 3] + "..."


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def container_port(pod: Pod, port: int | str) -> int | None:
    """The number of the pod's port `port`, a number or a container port's name as
    a Service's targetPort gives it; None when no container declares that name."""
    if isinstance(port, int):
        return port
    for container in (pod.get("spec") or {}).get("containers") or []:
        for declared in container.get("ports") or []:
            if declared.get("name") == port:
                return _int(declared.get("containerPort"))
    return None
