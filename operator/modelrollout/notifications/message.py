"""What a notification says: pure, so its shape is unit-tested."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from modelrollout.api import dump_status
from modelrollout.api.reasons import AUTOMATIC_ROLLBACK_REASONS, RETRAINING_OUTCOME_REASONS, Reason

if TYPE_CHECKING:
    from datetime import datetime

    from modelrollout.api import ModelDeploymentStatus
    from modelrollout.rollout import Event

# Automatic rollbacks (a failed analysis, a missed progress deadline), the
# stable revision drifting or recovering, and how each retraining run ended.
# Manual actions (abort, undo) are not notified: whoever ran them knows.
NOTIFIED_REASONS = (
    AUTOMATIC_ROLLBACK_REASONS
    | RETRAINING_OUTCOME_REASONS
    | {Reason.DRIFTED, Reason.DRIFT_RECOVERED}
)


def notification_body(
    format_: Literal["json", "slack"],
    *,
    namespace: str,
    name: str,
    event: Event,
    status: ModelDeploymentStatus,
    at: datetime,
) -> dict[str, Any]:
    if format_ == "slack":
        icon = ":rotating_light:" if event.type == "Warning" else ":white_check_mark:"
        return {
            "text": f"{icon} ModelDeployment {namespace}/{name}: {event.reason}: {event.message}"
        }
    dumped = dump_status(status)
    body: dict[str, Any] = {
        "kind": "ModelDeployment",
        "namespace": namespace,
        "name": name,
        "reason": event.reason,
        "type": event.type,
        "message": event.message,
        "at": at.isoformat(),
        "phase": status.phase,
        "stableRevision": status.stable_revision,
        "stableVersion": status.stable_version,
    }
    if event.reason in AUTOMATIC_ROLLBACK_REASONS and "lastRollback" in dumped:
        body["rollback"] = dumped["lastRollback"]
    if event.reason == Reason.DRIFTED and "drift" in dumped:
        body["drift"] = dumped["drift"]
    if event.reason in RETRAINING_OUTCOME_REASONS and "last" in dumped.get("retraining", {}):
        body["retraining"] = dumped["retraining"]["last"]
    return body
