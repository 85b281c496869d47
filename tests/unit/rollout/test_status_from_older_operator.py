"""A status written by an operator before status.stage and the timers (blue/green
with the stage only as a number in currentStep, a readinessWait without its
deadline) keeps working: the core resumes at the same stage and fills the new
fields in, and the CLI shows it as it shows a status that has them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from rollout_world import T0, make_spec

from modelrollout.api import BlueGreenStage, Timer, parse_status, spec_revision
from modelrollout.cli.render import bluegreen_lines, progress_lines
from modelrollout.rollout import Observed, RevisionObservation, plan

pytestmark = pytest.mark.unit

SPEC = make_spec(
    replicas=2,
    version="2",
    blue_green={"previewReplicas": 1, "autoPromotionSeconds": 120},
)
GREEN = spec_revision(SPEC)
BLUE = "blue1"


def todays_status(**fields: Any) -> dict[str, Any]:
    """What the operator before status.stage wrote while previewing."""
    return {
        "phase": "Progressing",
        "observedGeneration": 1,
        "stableRevision": BLUE,
        "stableVersion": "1",
        "canaryRevision": GREEN,
        "canaryVersion": "2",
        "currentStep": 1,
        "stepStartedAt": T0.isoformat(),
        "rolloutSource": "Spec",
        "rolloutStartedAt": T0.isoformat(),
        "reason": "Previewing",
        **fields,
    }


def observed(green_available: int) -> Observed:
    return Observed(
        generation=1,
        revisions=(
            RevisionObservation(BLUE, "1", 2, 2, 2),
            RevisionObservation(GREEN, "2", 1, green_available, green_available),
        ),
        routes={"main": BLUE, "canary": GREEN, "preview": GREEN},
    )


def test_the_core_resumes_at_the_stage_and_writes_stage_and_timer() -> None:
    old = parse_status(todays_status())
    assert old.stage is None and old.step_timer is None
    new = plan(SPEC, old, observed(1), T0 + timedelta(seconds=30)).new_status
    assert (new.stage, new.current_step, new.reason) == (
        BlueGreenStage.PREVIEWING,
        1,
        "Previewing",
    )
    assert new.step_timer == Timer(ends_at=T0 + timedelta(seconds=120))


def test_a_readiness_wait_without_its_deadline_gets_one() -> None:
    old = parse_status(
        todays_status(currentStep=0, readinessWait={"revision": GREEN, "since": T0.isoformat()})
    )
    new = plan(SPEC, old, observed(0), T0 + timedelta(seconds=30)).new_status
    assert new.stage == BlueGreenStage.PREVIEW_STARTING
    assert new.readiness_wait is not None
    assert new.readiness_wait.deadline == Timer(ends_at=T0 + timedelta(minutes=10))


def test_the_cli_shows_an_old_status_as_the_new_one() -> None:
    old = parse_status(todays_status(readinessWait={"revision": GREEN, "since": T0.isoformat()}))
    new = plan(SPEC, old, observed(0), T0 + timedelta(seconds=30)).new_status
    now = T0 + timedelta(seconds=40)
    assert bluegreen_lines("fraud", SPEC, old, {}) == bluegreen_lines("fraud", SPEC, new, {})
    assert progress_lines(SPEC, old, {}, now) == progress_lines(SPEC, new, {}, now)
    assert "-> 2. auto-promotion at 2025-06-01T12:02:00Z" in "\n".join(
        bluegreen_lines("fraud", SPEC, old, {})
    )


def test_the_cli_shows_what_the_operator_wrote() -> None:
    """Written fields win: the CLI does not recompute them."""
    written = parse_status(
        todays_status(
            stage="Previewing",
            currentStep=99,
            pausedAt=(T0 + timedelta(seconds=30)).isoformat(),
            stepTimer={"endsAt": (T0 + timedelta(minutes=5)).isoformat(), "pausedSecondsLeft": 42},
        )
    )
    lines = "\n".join(bluegreen_lines("fraud", SPEC, written, {}))
    assert "-> 2. auto-promotion timer frozen with 42s left (paused; `resume`)" in lines
    running = written.model_copy(update={"paused_at": None, "step_timer": Timer(ends_at=T0)})
    assert "-> 2. auto-promotion at 2025-06-01T12:00:00Z" in "\n".join(
        bluegreen_lines("fraud", SPEC, running, {})
    )


def test_a_stage_of_a_newer_operator_is_named_not_guessed() -> None:
    newer = parse_status(todays_status(stage="Mirroring", currentStep=1))
    lines = bluegreen_lines("fraud", SPEC, newer, {})
    assert lines[-1].strip() == "-> stage Mirroring: Previewing (see Message)"
