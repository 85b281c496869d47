"""Verdicts from bounds and from compareTo: stable; values, no data and errors."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest

from modelrollout.api import Metric
from modelrollout.metrics import Measurement
from modelrollout.metrics.prometheus import from_result
from modelrollout.metrics.verdicts import verdict

pytestmark = pytest.mark.unit

AT = datetime(2025, 6, 1, tzinfo=UTC)


def metric(**bounds: Any) -> Metric:
    return Metric.model_validate({"name": "m", "query": "q", **bounds})


def judge(m: Metric, measured: Measurement, stable: Measurement | None = None) -> Any:
    return verdict(m, measured, stable, measured_at=AT, revision="r1")


@pytest.mark.parametrize(
    ("bounds", "value", "expected", "threshold"),
    [
        ({"max": 0.05}, 0.01, "pass", "max 0.05"),
        ({"max": 0.05}, 0.05, "pass", "max 0.05"),  # bounds are inclusive
        ({"max": 0.05}, 0.2, "fail", "max 0.05"),
        ({"min": 0.9}, 0.95, "pass", "min 0.9"),
        ({"min": 0.9}, 0.5, "fail", "min 0.9"),
        ({"min": 0.1, "max": 0.2}, 0.15, "pass", "min 0.1, max 0.2"),
        ({"min": 0.1, "max": 0.2}, 0.25, "fail", "min 0.1, max 0.2"),
        ({"min": 0.1, "max": 0.2}, 0.05, "fail", "min 0.1, max 0.2"),
    ],
)
def test_absolute_bounds(
    bounds: dict[str, float], value: float, expected: str, threshold: str
) -> None:
    result = judge(metric(**bounds), Measurement.of(value))
    assert (result.verdict, result.value, result.threshold) == (expected, value, threshold)
    assert result.measured_at == AT and result.revision == "r1"
    if expected == "fail":
        assert f"value {value:g} outside" in result.message


@pytest.mark.parametrize(
    ("bounds", "canary", "stable", "expected"),
    [
        ({"maxDecrease": 0.02}, 0.90, 0.91, "pass"),
        ({"maxDecrease": 0.02}, 0.88, 0.91, "fail"),
        ({"maxDecrease": 0.02}, 0.99, 0.91, "pass"),  # better is fine
        ({"maxIncrease": 0.01}, 0.105, 0.1, "pass"),
        ({"maxIncrease": 0.01}, 0.2, 0.1, "fail"),
        ({"maxIncrease": 0.01, "maxDecrease": 0.01}, 0.05, 0.1, "fail"),
        ({"maxDecrease": 0.5, "min": 0.8}, 0.7, 0.91, "fail"),  # min still applies
    ],
)
def test_compare_to_stable(
    bounds: dict[str, float], canary: float, stable: float, expected: str
) -> None:
    m = metric(compareTo="stable", **bounds)
    result = judge(m, Measurement.of(canary), Measurement.of(stable))
    assert result.verdict == expected
    assert result.value == canary
    assert f"stable {stable:g}" in (result.threshold or "")


def test_compare_to_stable_threshold_names_the_bound_it_derives() -> None:
    m = metric(compareTo="stable", maxDecrease=0.02)
    result = judge(m, Measurement.of(0.8), Measurement.of(0.91))
    assert result.threshold == "min 0.89 (stable 0.91 - maxDecrease 0.02)"


@pytest.mark.parametrize(
    ("canary", "stable", "expected"),
    [
        (Measurement.of(0.9), Measurement.no_data("empty"), "nodata"),
        (Measurement.of(0.9), Measurement.of(math.nan), "nodata"),
        (Measurement.of(0.9), Measurement.error("down"), "error"),
        (Measurement.error("down"), Measurement.no_data("empty"), "error"),
        (Measurement.no_data("empty"), Measurement.of(0.9), "nodata"),
    ],
)
def test_compare_to_stable_without_a_baseline_never_passes(
    canary: Measurement, stable: Measurement, expected: str
) -> None:
    result = judge(metric(compareTo="stable", maxDecrease=0.02), canary, stable)
    assert result.verdict == expected
    assert result.value is None


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinities_are_no_data(value: float) -> None:
    result = judge(metric(max=1), Measurement.of(value))
    assert result.verdict == "nodata" and result.value is None
    assert result.threshold == "max 1"


def test_errors_keep_their_message() -> None:
    result = judge(metric(max=1), Measurement.error("cannot reach Prometheus"))
    assert (result.verdict, result.message) == ("error", "cannot reach Prometheus")


def series(value: str, **labels: str) -> dict[str, Any]:
    return {"metric": labels, "value": [1717243200.0, value]}


@pytest.mark.parametrize(
    ("result", "kind", "value", "hint"),
    [
        ([series("0.25")], "value", 0.25, ""),
        ([1717243200.0, "3"], "value", 3.0, ""),  # a scalar
        ([], "nodata", None, "empty vector"),
        ([series("NaN")], "nodata", None, "NaN"),
        ([series("+Inf")], "nodata", None, "inf"),
        ([series("-Inf")], "nodata", None, "inf"),
        ([series("1", pod="a"), series("2", pod="b")], "error", None, "2 series"),
        ([{"metric": {}, "values": [[1, "1"]]}], "error", None, "range vector"),
        ([1717243200.0, "hello"], "error", None, "not a number"),
        ({"unexpected": 1}, "error", None, "unexpected"),
    ],
)
def test_prometheus_results(result: Any, kind: str, value: float | None, hint: str) -> None:
    measured = from_result(result)
    assert (measured.kind, measured.value) == (kind, value)
    assert hint.lower() in measured.message.lower()


def test_multi_series_error_names_the_series_and_the_fix() -> None:
    measured = from_result([series("1", pod="a"), series("2", pod="b")])
    assert '"pod": "a"' in measured.message and "aggregate" in measured.message


def test_prometheus_http_errors_keep_prometheus_reason() -> None:
    from prometheus_api_client.exceptions import PrometheusApiClientException

    from modelrollout.metrics.prometheus import _prometheus_error

    body = b'{"status":"error","error":"invalid parameter \\"query\\": 1:5: parse error"}'
    error = PrometheusApiClientException(f"HTTP Status Code 400 ({body!r})")
    assert _prometheus_error(error) == 'HTTP 400: invalid parameter "query": 1:5: parse error'
    html = PrometheusApiClientException("HTTP Status Code 502 (b'<html>')")
    assert _prometheus_error(html).startswith("HTTP Status Code 502")
