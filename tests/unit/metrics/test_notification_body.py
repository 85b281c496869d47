"""What a rollback or drift notification says, as JSON and as Slack text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelrollout.api import ModelDeploymentStatus, RollbackRecord
from modelrollout.notifications import NOTIFIED_REASONS, notification_body
from modelrollout.rollout import Event

pytestmark = pytest.mark.unit

AT = datetime(2025, 6, 1, 12, tzinfo=UTC)
STATUS = ModelDeploymentStatus(
    phase="Degraded",
    stable_revision="old",
    stable_version="1",
    last_rollback=RollbackRecord(
        revision="new",
        version="2",
        reason="RolledBack",
        metric="error-rate",
        value=0.3,
        threshold="max 0.05",
        at=AT,
    ),
)
EVENT = Event("RolledBack", "revision new (version 2): error-rate failed", "Warning")


def test_json_carries_the_event_and_the_rollback_record() -> None:
    body = notification_body(
        "json", namespace="ml", name="fraud", event=EVENT, status=STATUS, at=AT
    )
    assert body["reason"] == "RolledBack" and body["namespace"] == "ml"
    assert body["stableVersion"] == "1"
    rollback = body["rollback"]
    assert (rollback["metric"], rollback["value"], rollback["threshold"]) == (
        "error-rate",
        0.3,
        "max 0.05",
    )


def test_slack_is_one_text_field() -> None:
    body = notification_body(
        "slack", namespace="ml", name="fraud", event=EVENT, status=STATUS, at=AT
    )
    assert list(body) == ["text"]
    assert "ml/fraud" in body["text"] and "RolledBack" in body["text"]


def test_a_missed_progress_deadline_carries_its_rollback_record_too() -> None:
    status = STATUS.model_copy(
        update={
            "last_rollback": RollbackRecord(
                revision="new",
                version="2",
                reason="ProgressDeadlineExceeded",
                message="progress deadline (10m) exceeded with 0/1 pods available: "
                "ImagePullBackOff: Back-off pulling image",
                at=AT,
            )
        }
    )
    event = Event("ProgressDeadlineExceeded", "revision new (version 2): ...", "Warning")
    body = notification_body(
        "json", namespace="ml", name="fraud", event=event, status=status, at=AT
    )
    assert body["rollback"]["reason"] == "ProgressDeadlineExceeded"
    assert "ImagePullBackOff" in body["rollback"]["message"]
    assert "metric" not in body["rollback"]


def test_rollbacks_and_drift_are_notified_manual_actions_are_not() -> None:
    assert {"RolledBack", "ProgressDeadlineExceeded", "Drifted", "DriftRecovered"} <= (
        NOTIFIED_REASONS
    )
    assert not {"Aborted", "Promoted", "UndoFailed"} & NOTIFIED_REASONS
