"""`modelrollout status` shows each metric's last value, counts and problem, the
drift and the last rollback as status holds them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelrollout.api import (
    DriftRecord,
    MetricAnalysis,
    ModelDeploymentStatus,
    RollbackRecord,
    parse_spec,
)
from modelrollout.cli.render import status_lines

pytestmark = pytest.mark.unit

AT = datetime(2025, 6, 1, 12, tzinfo=UTC)
SPEC = parse_spec(
    {
        "model": {"name": "m", "version": "2"},
        "template": {"spec": {"containers": [{"name": "s", "image": "i"}]}},
        "strategy": {"canary": {"steps": [{"setWeight": 50}]}},
    }
)
BODY = {"metadata": {"name": "fraud", "namespace": "ml"}}


def test_analysis_drift_and_rollback_are_shown() -> None:
    status = ModelDeploymentStatus(
        phase="Healthy",
        stable_revision="old",
        stable_version="1",
        analysis={
            "quality": MetricAnalysis(
                verdict="fail",
                revision="old",
                value=0.5,
                threshold="min 0.8",
                message="value 0.5 outside min 0.8",
                measured_at=AT,
                successes=3,
                failures=2,
            ),
            "latency": MetricAnalysis(verdict="error", message="cannot reach Prometheus"),
        },
        drift=DriftRecord(
            revision="old", version="1", metric="quality", message="quality failed", since=AT
        ),
        last_rollback=RollbackRecord(
            revision="new", version="2", reason="RolledBack", metric="quality", value=0.3,
            threshold="min 0.8", at=AT,
        ),
    )  # fmt: skip
    text = "\n".join(status_lines(BODY, SPEC, status, {}, []))
    quality = next(line for line in text.splitlines() if line.strip().startswith("quality"))
    assert "fail" in quality and "0.5" in quality and "min 0.8" in quality
    assert "ok 3 failed 2" in quality and quality.endswith("of old")
    assert "cannot reach Prometheus" in text
    assert "Drift:" in text and "quality failed" in text
    assert "Rollback:  RolledBack" in text and "quality = 0.3, threshold min 0.8" in text


def test_a_retraining_run_and_its_comparison_are_shown() -> None:
    from modelrollout.api import RetrainingRun, RetrainingStatus
    from modelrollout.api.status import DeferredTrigger
    from modelrollout.cli.render import retraining_lines

    at = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    run = RetrainingRun(
        number=3, job="fraud-retrain-3", trigger="Drift", cause="feature-drift failed",
        started_at=at, champion_version="4", finished_at=at, outcome="Accepted",
        message="accuracy 0.93 >= 0.81", candidate_version="5", metric="accuracy",
        candidate={"accuracy": 0.93}, champion={"accuracy": 0.81},
    )  # fmt: skip
    deferred = DeferredTrigger(trigger="Schedule", cause="schedule '0 3 * * *'", at=at)
    status = ModelDeploymentStatus(
        retraining=RetrainingStatus(last=run, runs=3, deferred=deferred, deferred_count=2)
    )
    lines = retraining_lines(status)
    assert lines[0].startswith("Retrained: run 3 Accepted -> version 5: accuracy 0.93 vs")
    assert "champion 0.81" in lines[0]
    assert lines[1] == "Deferred:  2 trigger(s), latest schedule: schedule '0 3 * * *'"
    assert retraining_lines(ModelDeploymentStatus()) == []
