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
