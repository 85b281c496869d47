"""spec.retraining in the decision core: what starts a retraining Job, that only one
runs at a time, that triggers while one runs are recorded and not stacked, the
cool-down, the schedule, the `retrain` command, and how each ending is reported."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from rollout_world import World, make_spec

from modelrollout.api import (
    ModelDeploymentSpec,
    RegistryVersion,
    SpecError,
    parse_spec,
)
from modelrollout.api.reasons import Reason
from modelrollout.rollout import REJECTED_EXIT_CODE, MetricVerdict, RetrainingJobObservation

pytestmark = pytest.mark.unit

TRACKING = "http://mlflow.ml:5000"
CHAMPION = RegistryVersion(name="fraud-model", version="4", sha256="a" * 64)
ANALYSIS: dict[str, Any] = {
    "interval": "30s",
    "failureLimit": 0,
    "prometheus": {"address": "http://prometheus:9090"},
    "metrics": [
        {"name": "feature-drift", "query": "psi", "max": 0.25},
        {"name": "live-accuracy", "query": "acc", "min": 0.8},
    ],
}


def _spec(**retraining: Any) -> ModelDeploymentSpec:
    """As the handler hands it to the core: the tracked alias resolved to version 4."""
    raw = make_spec(analysis=ANALYSIS).model_dump(by_alias=True, exclude_none=True, mode="json")
    raw["model"] = {
        "name": "fraud",
        "registry": {"name": "fraud-model", "alias": "candidate", "uri": TRACKING},
    }
    raw["retraining"] = {
        "job": {"template": {"spec": {"containers": [{"name": "train", "image": "srv:1"}]}}},
        "coolDown": "10m",
        **retraining,
    }
    written = parse_spec(raw)
    pinned = written.model.resolved(CHAMPION.version, CHAMPION.sha256, TRACKING)
    return written.model_copy(update={"model": pinned})


def _serving(**retraining: Any) -> World:
    world = World(_spec(**retraining), registry=CHAMPION, registry_alias="candidate")
    world.settle()
    assert world.status.phase == "Healthy", world.status.message
    return world


def _drift(world: World, metric: str = "feature-drift", minutes: int = 0) -> None:
    """The drift watch sees `metric` fail on the stable revision (after `minutes`
    passing measurements, so each call is a new drift episode)."""
    for verdict in ["pass"] * (1 if minutes else 0) + ["fail"]:
        world.wait(30 + 60 * minutes if verdict == "pass" else 30)
        world.verdicts[metric] = MetricVerdict(
            verdict,  # type: ignore[arg-type]
            world.now,
            value=0.8,
            threshold="max 0.25",
            revision=world.status.stable_revision,
        )
        if verdict == "pass":
            world.plan()


def _end(world: World, number: int, state: str, exit_code: int, outcome: dict[str, Any]) -> None:
    job = world.jobs[number]
    world.jobs[number] = replace(
        job, state=state, exit_code=exit_code, message=json.dumps(outcome), finished_at=world.now
    )


def test_drift_starts_one_job_with_the_champion_and_the_tracked_alias() -> None:
    world = _serving()
    assert world.started == []
    _drift(world)
    world.plan()
    assert len(world.started) == 1
    job = world.started[0]
    env = dict(job.env)
    assert job.name == "fraud-retrain-1"
    assert env["MODELROLLOUT_RETRAIN_CHAMPION"] == "models:/fraud-model/4"
    assert env["MODELROLLOUT_RETRAIN_ALIAS"] == "candidate"
    assert env["MLFLOW_TRACKING_URI"] == TRACKING
    assert env["MODELROLLOUT_RETRAIN_TRIGGER"] == "Drift"
    active = world.status.retraining and world.status.retraining.active
    assert active and active.champion_version == "4" and active.trigger == "Drift"
    assert Reason.RETRAINING_STARTED in world.event_reasons()


def test_a_trigger_while_a_job_runs_is_recorded_once_and_not_stacked() -> None:
    world = _serving()
    _drift(world)
    world.plan()
    world.send("retrain")
    world.plan()
    assert world.status.last_command and world.status.last_command.result == "Rejected"
    assert "still running" in world.status.last_command.message
    _drift(world, minutes=5)  # drift set again: a new occurrence while the Job runs
    world.plan()
    world.plan()
    retraining = world.status.retraining
    assert retraining is not None
    assert len({job.number for job in world.started}) == 1, "one Job, never two"
    assert retraining.deferred_count == 1 and retraining.deferred is not None


def test_an_accepted_candidate_is_reported_with_both_sides_metrics_on_the_same_rows() -> None:
    world = _serving()
    _drift(world)
    world.plan()
    world.wait(120)
    outcome = {
        "accepted": True,
        "metric": "accuracy",
        "candidate": {"accuracy": 0.93, "f1": 0.9},
        "champion": {"accuracy": 0.81, "f1": 0.78},
        "reason": "accuracy 0.93 >= 0.81 - margin 0",
        "registered": {"name": "fraud-model", "version": "5", "alias": "candidate"},
    }
    _end(world, 1, "Succeeded", 0, outcome)
    world.plan()
    retraining = world.status.retraining
    assert retraining is not None and retraining.active is None
    last = retraining.last
    assert last is not None and last.outcome == "Accepted" and last.candidate_version == "5"
    assert last.candidate["accuracy"] == 0.93 and last.champion["accuracy"] == 0.81
    event = next(e for e in world.events if e.reason == Reason.RETRAINING_ACCEPTED)
    assert "0.93 vs the champion's 0.81" in event.message


def test_a_rejected_candidate_and_a_failed_job_are_told_apart() -> None:
    world = _serving()
    _drift(world)
    world.plan()
    rejected = {
        "accepted": False,
        "metric": "mae",
        "candidate": {"mae": 50.0},
        "champion": {"mae": 40.0},
        "reason": "mae 50 is worse than the champion's 40 by more than the margin 0",
    }
    _end(world, 1, "Failed", REJECTED_EXIT_CODE, rejected)
    world.plan()
    last = world.status.retraining and world.status.retraining.last
    assert last and last.outcome == "Rejected" and "worse" in last.message
    assert last.candidate_version is None

    world.wait(11 * 60)  # past the cool-down
    world.plan()
    assert world.status.retraining and world.status.retraining.active
    number = world.status.retraining.active.number
    world.jobs[number] = replace(
        world.jobs[number],
        state="Failed",
        exit_code=2,
        message="ValueError: only 12 labelled rows, at least 50 needed",
        reason="BackoffLimitExceeded",
        finished_at=world.now,
    )
    world.plan()
    last = world.status.retraining.last
    assert last and last.outcome == "Failed"
    assert "BackoffLimitExceeded" in last.message and "only 12 labelled rows" in last.message
    assert world.status.stable_version == "4", "what serves is unchanged"


def test_drift_cools_down_after_a_run_but_a_retrain_command_does_not_wait() -> None:
    world = _serving()
    _drift(world)
    world.plan()
    _end(world, 1, "Failed", REJECTED_EXIT_CODE, {"accepted": False, "reason": "worse"})
    world.plan()
    world.wait(60)
    world.plan()
    assert world.status.retraining and world.status.retraining.active is None
    assert "cooling down" in next(
        e.message for e in world.events if e.reason == Reason.RETRAINING_DEFERRED
    )
    world.send("retrain", dataset="2")
    world.plan()
    active = world.status.retraining.active
    assert active is not None and active.trigger == "Manual" and active.dataset == "2"
    env = dict(world.started[-1].env)
    assert env["MODELROLLOUT_RETRAIN_DATASET"] == "models:/fraud-model/2"


def test_a_schedule_starts_a_run_at_its_tick_and_not_for_ticks_before_it_was_seen() -> None:
    world = _serving(triggers={"onDrift": False, "schedule": "0 3 * * *"})
    assert world.started == [], "no run for the ticks before the schedule was seen"
    result = world.plan()
    assert result.requeue_after is not None and result.requeue_after <= 15 * 3600
    world.wait(15 * 3600 + 60)  # T0 is 12:00: past 03:00 the next day
    world.plan()
    assert [job.name for job in world.started] == ["fraud-retrain-1"]
    assert world.status.retraining and world.status.retraining.active
    assert world.status.retraining.active.trigger == "Schedule"


def test_drift_of_a_metric_not_listed_starts_nothing() -> None:
    """And the drift message says whether retraining takes it on."""
    world = _serving(triggers={"driftMetrics": ["live-accuracy"]})
    _drift(world, metric="feature-drift")
    world.plan()
    assert world.started == []
    assert "Roll out a corrected model" in world.status.message
    world.wait(30)
    world.verdicts["feature-drift"] = MetricVerdict(
        "pass", world.now, revision=world.status.stable_revision
    )
    world.plan()
    _drift(world, metric="live-accuracy")
    world.plan()
    assert len(world.started) == 1
    assert "Retraining runs on it (status.retraining)" in world.status.message


def test_finished_jobs_beyond_the_history_limit_are_deleted() -> None:
    world = _serving(historyLimit=1, coolDown="0s")
    for number in (1, 2):
        _drift(world, minutes=number)
        world.plan()
        _end(world, number, "Failed", REJECTED_EXIT_CODE, {"accepted": False, "reason": "x"})
        world.plan()
    assert sorted(world.jobs) == [2] or sorted(world.jobs) == [2, 3]
    assert 1 not in world.jobs


def test_retraining_needs_a_tracked_alias() -> None:
    raw = make_spec().model_dump(by_alias=True, exclude_none=True, mode="json")
    raw["retraining"] = {
        "job": {"template": {"spec": {"containers": [{"name": "t", "image": "i"}]}}}
    }
    with pytest.raises(SpecError, match=r"retraining needs model\.registry with an alias"):
        parse_spec(raw)


def test_a_schedule_that_is_not_cron_is_refused() -> None:
    with pytest.raises(SpecError, match="not a five-field cron expression"):
        _spec(triggers={"schedule": "every sunday"})


def test_the_outcome_of_a_job_without_json_is_still_a_clear_failure() -> None:
    from modelrollout.rollout.retraining import judge

    job = RetrainingJobObservation(
        "fraud-retrain-1", 1, "Failed", exit_code=None, reason="DeadlineExceeded",
        detail="Job was active longer than specified deadline",
    )  # fmt: skip
    outcome, message, _ = judge(job)
    assert outcome == "Failed"
    assert message.startswith("DeadlineExceeded: Job was active longer")
