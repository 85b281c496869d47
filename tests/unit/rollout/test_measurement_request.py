"""Checks are measured at the analysis interval, of the revision being judged, with
the query variables naming it; and plan() judges the checks that are measured."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelrollout.api import (
    Analysis,
    MetricAnalysis,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    parse_spec,
)
from modelrollout.rollout.measurement import MeasurementRequest, request, scope

pytestmark = pytest.mark.unit

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
ANALYSIS = Analysis.model_validate(
    {
        "interval": "30s",
        "prometheus": {"address": "http://p:9090"},
        "webhook": {"url": "http://hook/check"},
        "metrics": [
            {"name": "errors", "query": "q", "max": 1},
            {"name": "accuracy", "query": "q", "compareTo": "stable", "maxDecrease": 0.1},
        ],
    }
)
IN_ROLLOUT: dict[str, Any] = {
    "phase": "Progressing",
    "stable_revision": "old",
    "stable_version": "1",
    "canary_revision": "new",
    "canary_version": "2",
    "rollout_source": "Spec",
}
HEALTHY: dict[str, Any] = {"phase": "Healthy", "stable_revision": "old", "stable_version": "1"}


def spec_with(
    analysis: Analysis | None, strategy: dict[str, Any] | None = None
) -> ModelDeploymentSpec:
    return parse_spec(
        {
            "replicas": 2,
            "model": {"name": "m", "version": "2"},
            "template": {"spec": {"containers": [{"name": "s", "image": "i"}]}},
            "strategy": strategy or {"canary": {"steps": [{"setWeight": 50}]}},
            **(
                {"analysis": analysis.model_dump(by_alias=True, exclude_none=True)}
                if analysis
                else {}
            ),
        }
    )


def due(
    analysis: Analysis | None,
    current: ModelDeploymentStatus,
    now: datetime,
    strategy: dict[str, Any] | None = None,
) -> MeasurementRequest | None:
    return request(spec_with(analysis, strategy), current, now, namespace="ml", name="fraud")


def measured(seconds_ago: float, revision: str) -> MetricAnalysis:
    return MetricAnalysis(measured_at=NOW - timedelta(seconds=seconds_ago), revision=revision)


def status(base: dict[str, Any], **analysis: MetricAnalysis) -> ModelDeploymentStatus:
    return ModelDeploymentStatus(**base, analysis=analysis)


@pytest.mark.parametrize(
    ("current", "checks", "revision"),
    [
        (status(IN_ROLLOUT), ("errors", "accuracy", "webhook"), "new"),
        (status(HEALTHY), ("errors",), "old"),  # compareTo and the webhook gate rollouts only
        (
            status(IN_ROLLOUT, errors=measured(10, "new"), accuracy=measured(30, "new")),
            ("accuracy", "webhook"),
            "new",
        ),
        (status(HEALTHY, errors=measured(29.9, "old")), None, None),
        (status(HEALTHY, errors=measured(30, "old")), ("errors",), "old"),
        (status(HEALTHY, errors=measured(1, "new")), ("errors",), "old"),  # another revision
        (status({**HEALTHY, "phase": "Degraded"}), None, None),
        (status({**HEALTHY, "phase": "Progressing"}), None, None),
        (status({**IN_ROLLOUT, "rollout_source": "Undo"}), None, None),
        (status({}), None, None),
    ],
)
def test_due(
    current: ModelDeploymentStatus, checks: tuple[str, ...] | None, revision: str | None
) -> None:
    found = due(ANALYSIS, current, NOW)
    if checks is None:
        assert found is None
    else:
        assert found is not None
        assert (found.checks, found.revision, found.purpose == "rollout") == (
            checks,
            revision,
            current.rollout_in_flight,
        )


def test_nothing_is_due_without_analysis() -> None:
    assert due(None, status(IN_ROLLOUT), NOW) is None
    assert due(Analysis(), status(IN_ROLLOUT), NOW) is None


def test_after_a_blue_green_switch_compare_to_metrics_are_not_measured() -> None:
    switched = status({**IN_ROLLOUT, "current_step": 3})
    found = due(ANALYSIS, switched, NOW, strategy={"blueGreen": {}})
    assert found is not None
    assert found.checks == ("errors", "webhook")


def test_the_variables_name_the_measured_revision() -> None:
    rolling = due(ANALYSIS, status(IN_ROLLOUT), NOW)
    watching = due(ANALYSIS, status(HEALTHY), NOW)
    assert rolling is not None and watching is not None
    assert (rolling.variables["version"], rolling.stable_variables["version"]) == ("2", "1")
    # No rollout: the stable revision stands in for the canary.
    assert (watching.variables["version"], watching.variables["canaryVersion"]) == ("1", "1")
    assert rolling.variables["interval"] == "30s"


@pytest.mark.parametrize(
    ("current", "strategy", "judged"),
    [
        (status(IN_ROLLOUT), None, ("errors", "accuracy", "webhook")),
        (status({**IN_ROLLOUT, "current_step": 3}), {"blueGreen": {}}, ("errors", "webhook")),
        (status(HEALTHY), None, ("errors",)),
        (status({**IN_ROLLOUT, "rollout_source": "Undo"}), None, None),
    ],
)
def test_what_is_judged_is_what_is_measured(
    current: ModelDeploymentStatus, strategy: dict[str, Any] | None, judged: tuple[str, ...] | None
) -> None:
    applies = scope(spec_with(ANALYSIS, strategy), current)
    measured = due(ANALYSIS, current, NOW, strategy)
    assert (applies.gating if applies else None) == judged
    assert (measured.checks if measured else None) == judged
