"""Analysis verdicts in, a go / wait / hold / fail judgement out.

Measuring is the I/O layer's job (modelrollout.metrics): it hands the core the
latest verdict per check. Here each measurement is counted once (keyed by its
time, and only for the revision it measured) into status.analysis, and the
counts decide:

- fail: a gating check's failures exceed failureLimit, or its query errors in a
  row exceed consecutiveErrorLimit; onNoData=Fail counts no-data as a failure.
- hold (phase Paused): the latest verdict is inconclusive, a query error (within
  consecutiveErrorLimit), or no-data with onNoData=Pause. Never a promotion on
  missing data; `promote` overrides.
- pending: some gating check has no passing measurement taken since the current
  step began (each step is judged on data from that step). With onNoData=Ignore
  a check whose latest measurement had no data is not waited for, but no data is
  never a pass: a step still needs at least one check that passed on real data.
- pass: otherwise, and always when the spec configures no analysis.

dryRun metrics are counted and shown but never decide. Which checks apply (and
so are measured, counted and judged) is measurement.py's one rule: the callers
pass its Scope's names in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from modelrollout.api import MetricAnalysis
from modelrollout.api.reasons import Reason

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from modelrollout.api import Analysis, ModelDeploymentStatus
    from modelrollout.rollout.observed import MetricVerdict

# The key under which the I/O layer reports analysis.webhook's verdict.
WEBHOOK_CHECK = "webhook"


@dataclass(frozen=True)
class Judgement:
    outcome: Literal["pass", "pending", "hold", "fail"]
    reason: Reason | None = None
    message: str = ""
    check: str | None = None
    value: float | None = None
    threshold: str | None = None

    @property
    def required_reason(self) -> Reason:
        """The reason of a judgement other than a pass (which gives none)."""
        assert self.reason is not None, f"a {self.outcome} judgement without a reason"
        return self.reason


PASS = Judgement("pass")


def record(
    analysis: Analysis | None,
    status: ModelDeploymentStatus,
    verdicts: Mapping[str, MetricVerdict],
    revision: str | None,
    checks: tuple[str, ...],
) -> ModelDeploymentStatus:
    """Count measurements of `checks` of `revision` not counted yet (newer than the
    last one, taken during this rollout); returns `status` itself when there is
    nothing new."""
    if analysis is None:
        return status
    since = status.rollout_started_at
    updated = dict(status.analysis)
    for name in checks:
        verdict = verdicts.get(name)
        if verdict is None or (since is not None and verdict.measured_at < since):
            continue
        if verdict.revision is not None and verdict.revision != revision:
            continue
        before = updated.get(name, MetricAnalysis())
        if before.measured_at is not None and verdict.measured_at <= before.measured_at:
            continue
        updated[name] = _count(before, verdict, analysis.on_no_data, revision)
    if updated == status.analysis:
        return status
    return status.model_copy(update={"analysis": updated})


def _count(
    before: MetricAnalysis, verdict: MetricVerdict, on_no_data: str, revision: str | None
) -> MetricAnalysis:
    kind = verdict.verdict
    failed = kind == "fail" or (kind == "nodata" and on_no_data == "Fail")
    passed = kind == "pass"
    if failed:
        consecutive_failures = before.consecutive_failures + 1
    elif passed:
        consecutive_failures = 0
    else:  # an error or missing data says nothing about the model
        consecutive_failures = before.consecutive_failures
    return before.model_copy(
        update={
            "verdict": kind,
            "revision": verdict.revision or revision,
            "value": verdict.value,
            "threshold": verdict.threshold,
            "message": verdict.message,
            "measured_at": verdict.measured_at,
            "successes": before.successes + passed,
            "failures": before.failures + failed,
            "inconclusive": before.inconclusive + (kind == "inconclusive"),
            "errors": before.errors + (kind == "error"),
            "no_data": before.no_data + (kind == "nodata"),
            "consecutive_errors": before.consecutive_errors + 1 if kind == "error" else 0,
            "consecutive_failures": consecutive_failures,
        }
    )


def judge(
    analysis: Analysis | None,
    status: ModelDeploymentStatus,
    step_started_at: datetime | None,
    gating: tuple[str, ...],
) -> Judgement:
    if analysis is None or not analysis.configured:
        return PASS
    if not gating:  # only dryRun metrics, or nothing measured (an undo): nothing decides
        return PASS
    results = {name: status.analysis.get(name) for name in gating}
    for name, result in results.items():
        if result is None:
            continue
        if result.failures > analysis.failure_limit:
            return Judgement(
                "fail",
                Reason.ANALYSIS_FAILED,
                f"{name} failed {result.failures} time(s), more than failureLimit "
                f"{analysis.failure_limit}" + detail(result),
                name,
                result.value,
                result.threshold,
            )
        if result.consecutive_errors > analysis.consecutive_error_limit:
            return Judgement(
                "fail",
                Reason.ANALYSIS_ERROR,
                f"{name} could not be measured {result.consecutive_errors} times in a row, "
                f"more than consecutiveErrorLimit {analysis.consecutive_error_limit}"
                + (f": {result.message}" if result.message else ""),
                name,
            )
    for name, result in results.items():
        if result is None:
            continue
        if result.verdict == "inconclusive":
            return Judgement(
                "hold",
                Reason.ANALYSIS_INCONCLUSIVE,
                f"{name} is inconclusive{detail(result)}; `promote` to go on, `abort` to stop",
                name,
            )
        if result.verdict == "error":
            # Within consecutiveErrorLimit: wait for Prometheus rather than judge blind.
            return Judgement(
                "hold",
                Reason.ANALYSIS_UNAVAILABLE,
                f"{name} could not be measured ({result.consecutive_errors} in a row, "
                f"consecutiveErrorLimit {analysis.consecutive_error_limit})"
                + (f": {result.message}" if result.message else "")
                + "; measuring again every interval",
                name,
            )
        if result.verdict == "nodata" and analysis.on_no_data == "Pause":
            return Judgement(
                "hold",
                Reason.ANALYSIS_NO_DATA,
                f"{name} has no data (onNoData: Pause); check that the canary gets traffic, "
                "or `promote` to go on",
                name,
            )
    this_step = {
        name: result
        for name, result in results.items()
        if result is not None
        and result.measured_at is not None
        and (step_started_at is None or result.measured_at > step_started_at)
    }
    passed = [name for name, result in this_step.items() if result.verdict == "pass"]
    ignored = [
        name
        for name, result in this_step.items()
        if result.verdict == "nodata" and analysis.on_no_data == "Ignore"
    ]
    waiting = [name for name in results if name not in passed and name not in ignored]
    if waiting:
        return Judgement(
            "pending", Reason.WAITING_FOR_ANALYSIS, f"waiting for a passing {', '.join(waiting)}"
        )
    if not passed:
        return Judgement(
            "pending",
            Reason.WAITING_FOR_ANALYSIS,
            f"waiting for data: {', '.join(ignored)} had none (onNoData: Ignore skips a "
            "check without data, but a step needs at least one check passing on real data)",
        )
    return PASS


def detail(result: MetricAnalysis) -> str:
    """ " (value 0.3, threshold max 0.05)" for messages; empty when neither is known."""
    parts = []
    if result.value is not None:
        parts.append(f"value {result.value:g}")
    if result.threshold:
        parts.append(f"threshold {result.threshold}")
    return f" ({', '.join(parts)})" if parts else ""


def summary(status: ModelDeploymentStatus, gating: tuple[str, ...]) -> str:
    """ "analysis 3/3 passing" for status messages; empty without gating checks."""
    if not gating:
        return ""
    passing = sum(
        1
        for name in gating
        if (result := status.analysis.get(name)) is not None and result.verdict == "pass"
    )
    return f"analysis {passing}/{len(gating)} passing"
