"""What a retraining Job and its pod say about how the run ended. Pure: Job and
Pod objects as the API server returns them (JSON dicts, camelCase) in, the
decision core's RetrainingJobObservation out, so each ending is unit-tested on
real-looking objects.

A Job is finished when its Complete or Failed condition is True. The training
container's last termination gives the exit code and the termination message:
`modelrollout retrain` writes its outcome there as one JSON object, kept whole
(it is at most 4 KiB, Kubernetes' limit, and holds no configuration). Anything
else there (a crash's log tail, through FallbackToLogsOnError) is cleaned as
pods.py cleans every container message: one line, literal env values blanked.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from modelrollout.kube.pods import clean_message, env_values
from modelrollout.rollout import RetrainingJobObservation, RetrainingJobState

Job = dict[str, Any]
Pod = dict[str, Any]


def job_observation(name: str, number: int, job: Job) -> RetrainingJobObservation:
    status = job.get("status") or {}
    state: RetrainingJobState = "Running"
    reason = detail = ""
    finished_at = None
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True" or condition.get("type") not in ("Complete", "Failed"):
            continue
        state = "Succeeded" if condition["type"] == "Complete" else "Failed"
        reason = str(condition.get("reason") or "")
        detail = str(condition.get("message") or "")
        finished_at = _time(condition.get("lastTransitionTime") or status.get("completionTime"))
        break
    return RetrainingJobObservation(
        name=name,
        number=number,
        state=state,
        reason=reason if state == "Failed" else "",
        detail=" ".join(detail.split())[:300] if state == "Failed" else "",
        finished_at=finished_at,
    )


def with_termination(
    observation: RetrainingJobObservation, pods: list[Pod]
) -> RetrainingJobObservation:
    """The observation with the exit code and message of the newest pod's training
    container (the first container of the template that terminated)."""
    newest = sorted(pods, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp")))
    for pod in reversed(newest):
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            ended = (container.get("state") or {}).get("terminated")
            if not isinstance(ended, dict):
                continue
            code = ended.get("exitCode")
            return replace(
                observation,
                exit_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
                message=_message(ended.get("message"), pod),
            )
    return observation


def _message(text: Any, pod: Pod) -> str:
    if not isinstance(text, str):
        return ""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            if isinstance(json.loads(stripped), dict):
                return stripped
        except ValueError:
            pass
    return clean_message(text, env_values(pod))


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
