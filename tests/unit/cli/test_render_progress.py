"""`modelrollout status` shows what the new revision's pods report and the progress
deadline the operator waits against (running, frozen by a pause, exceeded)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelrollout.api import ModelDeploymentStatus, ReadinessWait, parse_spec
from modelrollout.cli.render import progress_lines, status_lines
from modelrollout.rollout import PodCause, PodsObservation

pytestmark = pytest.mark.unit

SINCE = datetime(2025, 6, 1, 12, tzinfo=UTC)
BODY = {"metadata": {"name": "fraud", "namespace": "ml"}}
PULLING = 'ImagePullBackOff: Back-off pulling image "srv:2"'
PULL = PodsObservation(
    ready=0,
    not_ready=2,
    cause=PodCause("waiting", "ImagePullBackOff", 'Back-off pulling image "srv:2"', "server"),
)


def spec(strategy: dict[str, Any]) -> Any:
    return parse_spec(
        {
            "replicas": 2,
            "model": {"name": "m", "version": "2"},
            "template": {"spec": {"containers": [{"name": "s", "image": "i"}]}},
            "strategy": strategy,
        }
    )


CANARY = spec({"canary": {"steps": [{"setWeight": 100}]}})
BLUE_GREEN = spec({"blueGreen": {}})


def waiting(**fields: Any) -> ModelDeploymentStatus:
    wait = fields.pop("wait", {})
    base: dict[str, Any] = {
        "phase": "Progressing",
        "reason": "WaitingForCanary",
        "stable_revision": "old1",
        "stable_version": "1",
        "canary_revision": "new2",
        "canary_version": "2",
        "current_step": 0,
        "readiness_wait": ReadinessWait(revision="new2", since=SINCE, **wait),
    }
    return ModelDeploymentStatus(**{**base, **fields})


@pytest.mark.parametrize(
    ("the_spec", "status", "now", "expected"),
    [
        pytest.param(
            CANARY, waiting(), SINCE + timedelta(seconds=348),
            [
                f"Pods:      canary pods 0/2 ready: {PULLING}",
                "Deadline:  progress deadline 2025-06-01T12:10:00Z (4m12s of 10m left)",
            ],
            id="canary waiting",
        ),
        pytest.param(
            BLUE_GREEN, waiting(), SINCE + timedelta(seconds=590),
            [
                f"Pods:      new pods 0/2 ready: {PULLING}",
                "Deadline:  progress deadline 2025-06-01T12:10:00Z (10s of 10m left)",
            ],
            id="blue/green waiting",
        ),
        pytest.param(
            CANARY, waiting(paused_at=SINCE + timedelta(seconds=120)),
            SINCE + timedelta(hours=5),
            [
                f"Pods:      canary pods 0/2 ready: {PULLING}",
                "Deadline:  progress deadline frozen with 8m00s of 10m left (paused; `resume`)",
            ],
            id="paused: the clock is frozen",
        ),
        pytest.param(
            CANARY,
            waiting(
                phase="Degraded",
                wait={"exceeded_at": SINCE + timedelta(minutes=10), "message": "m"},
            ),
            SINCE + timedelta(hours=1),
            [
                f"Pods:      canary pods 0/2 ready: {PULLING}",
                "Deadline:  progress deadline exceeded at 2025-06-01T12:10:00Z (10m); traffic "
                "stays on stable until `abort` or `promote`",
            ],
            id="exceeded without automatic rollback",
        ),
        pytest.param(
            CANARY,
            waiting(
                stable_revision=None, stable_version=None, canary_revision=None,
                canary_version=None, current_step=None, phase="Degraded",
            ),
            SINCE + timedelta(hours=1),
            [
                f"Pods:      revision pods 0/2 ready: {PULLING}",
                "Deadline:  progress deadline 2025-06-01T12:10:00Z (passed, 10m after "
                "2025-06-01T12:00:00Z)",
            ],
            id="first revision past its deadline",
        ),
    ],
)  # fmt: skip
def test_progress_lines(
    the_spec: Any, status: ModelDeploymentStatus, now: datetime, expected: list[str]
) -> None:
    assert progress_lines(the_spec, status, {"new2": PULL, "old1": PodsObservation(2)}, now) == (
        expected
    )


def test_nothing_is_shown_when_the_new_pods_are_ready_or_nothing_rolls_out() -> None:
    ready = {"new2": PodsObservation(ready=2)}
    status = waiting(readiness_wait=None)
    assert progress_lines(CANARY, status, ready, SINCE) == []
    idle = ModelDeploymentStatus(phase="Healthy", stable_revision="old1", stable_version="1")
    assert progress_lines(CANARY, idle, {"old1": PULL}, SINCE) == []
    # A status of an operator without the deadline: the pods alone.
    assert progress_lines(CANARY, status, {"new2": PULL}, SINCE) == [
        f"Pods:      canary pods 0/2 ready: {PULLING}"
    ]


def test_status_view_places_them_under_the_revisions() -> None:
    lines = status_lines(
        BODY, CANARY, waiting(), {"new2": (0, 2), "old1": (2, 2)}, [], pods={"new2": PULL},
        now=SINCE,
    )  # fmt: skip
    canary = next(i for i, line in enumerate(lines) if line.startswith("Canary:"))
    assert lines[canary + 1].startswith("Pods:      canary pods 0/2 ready: ImagePullBackOff")
    assert lines[canary + 2] == (
        "Deadline:  progress deadline 2025-06-01T12:10:00Z (10m00s of 10m left)"
    )
    # Without pods or a clock (older callers): the deadline alone, by its start.
    plain = status_lines(BODY, CANARY, waiting(), {}, [])
    assert "Deadline:  progress deadline 2025-06-01T12:10:00Z (10m after 2025-06-01T12:00:00Z)" in (
        plain
    )
