"""From measurements to a verdict: bounds (min/max) and `compareTo: stable`.

With compareTo the same query runs for both revisions and the canary's value is
judged against the stable one's: maxIncrease/maxDecrease are absolute
differences (accuracy 0.91 with maxDecrease 0.02 accepts down to 0.89). min/max,
when also given, still apply to the canary's value. Either side erroring is an
error; either side without data is no data: a missing baseline never passes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelrollout.rollout import MetricVerdict

if TYPE_CHECKING:
    from datetime import datetime

    from modelrollout.api import Metric, Verdict
    from modelrollout.metrics.measurement import Measurement


def verdict(
    metric: Metric,
    measured: Measurement,
    stable: Measurement | None,
    *,
    measured_at: datetime,
    revision: str,
) -> MetricVerdict:
    """`stable` is the stable revision's measurement for compareTo metrics, else None."""
    bounds = _bounds(metric, stable)
    threshold = None if isinstance(bounds, str) else ", ".join(t for _, _, t in bounds) or None

    def without_value(kind: Verdict, message: str) -> MetricVerdict:
        return MetricVerdict(
            kind, measured_at, threshold=threshold, message=message, revision=revision
        )

    if measured.kind == "error":
        return without_value("error", measured.message)
    if isinstance(bounds, str):
        stable_failed = stable is not None and stable.kind == "error"
        return without_value("error" if stable_failed else "nodata", bounds)
    if measured.kind == "nodata" or measured.value is None:
        return without_value("nodata", measured.message)
    value = measured.value
    broken = [
        text
        for kind, bound, text in bounds
        if (kind == "min" and value < bound) or (kind == "max" and value > bound)
    ]
    if broken:
        return MetricVerdict(
            "fail",
            measured_at,
            value=value,
            threshold=threshold,
            message=f"value {value:g} outside {'; '.join(broken)}",
            revision=revision,
        )
    return MetricVerdict("pass", measured_at, value=value, threshold=threshold, revision=revision)


def _bounds(metric: Metric, stable: Measurement | None) -> list[tuple[str, float, str]] | str:
    """(min|max, bound, description) per bound; a message when the baseline is missing."""
    bounds: list[tuple[str, float, str]] = []
    if metric.min_value is not None:
        bounds.append(("min", metric.min_value, f"min {metric.min_value:g}"))
    if metric.max_value is not None:
        bounds.append(("max", metric.max_value, f"max {metric.max_value:g}"))
    if metric.compare_to is None:
        return bounds
    if stable is None or stable.kind != "value" or stable.value is None:
        what = "could not be measured" if stable and stable.kind == "error" else "has no data"
        detail = f": {stable.message}" if stable and stable.message else ""
        return f"the stable revision (the baseline) {what}{detail}"
    base = stable.value
    if metric.max_decrease is not None:
        bound = base - metric.max_decrease
        text = f"min {bound:g} (stable {base:g} - maxDecrease {metric.max_decrease:g})"
        bounds.append(("min", bound, text))
    if metric.max_increase is not None:
        bound = base + metric.max_increase
        text = f"max {bound:g} (stable {base:g} + maxIncrease {metric.max_increase:g})"
        bounds.append(("max", bound, text))
    return bounds
