"""The drift watch: once a revision is stable, its metrics keep being measured.

A model can go bad while nothing is rolled out (the input data shifts, labels
show its accuracy sliding), so while Healthy the I/O layer keeps measuring the
analysis metrics on the stable revision (compareTo metrics have nothing to
compare with and are skipped) and this module counts those measurements.

A metric that fails more than failureLimit times in a row sets status.drift and
the Drifted condition, with a Warning Event; the next passing measurement
clears them. In a row, not in total: the watch runs for months, and a total
would eventually trip on noise. Errors and missing data neither set nor clear
it: they say nothing about the model. dryRun metrics are shown, never alarm.

Drift starts no rollout and does not change the phase: the revision that serves
passed its rollout and nothing the operator can do fixes it, so Ready stays
True and kstatus/Flux/Argo CD keep seeing a Current object. The Drifted
condition, the reason `Drifted` and the notification are what tell people.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelrollout.api import DriftRecord
from modelrollout.api.reasons import Reason
from modelrollout.rollout import analysis, measurement
from modelrollout.rollout.outcome import Event, Transition

if TYPE_CHECKING:
    from modelrollout.api import Analysis, MetricAnalysis, ModelDeploymentStatus
    from modelrollout.rollout.context import Context


def watch(ctx: Context, status: ModelDeploymentStatus) -> Transition | None:
    """Counts new measurements of the stable revision and sets or clears drift;
    None when nothing changed."""
    stable, version = status.stable_revision, status.stable_version
    assert stable is not None and version is not None, "drift watch without a stable revision"
    spec_analysis = ctx.spec.analysis
    applies = measurement.scope(ctx.spec, status)
    checks, gating = (applies.checks, applies.gating) if applies else ((), ())
    recorded = analysis.record(spec_analysis, status, ctx.observed.verdicts, stable, checks)
    breaches = _breaches(spec_analysis, recorded, stable, gating)
    current = recorded.drift if recorded.drift and recorded.drift.revision == stable else None
    events: tuple[Event, ...] = ()
    drift = current
    if breaches and (current is None or current.metric not in breaches):
        name, result = next(iter(breaches.items()))
        message = (
            f"{name} failed {result.consecutive_failures} time(s) in a row on stable revision "
            f"{stable} (version {version}){analysis.detail(result)}"
        )
        drift = DriftRecord(
            revision=stable,
            version=version,
            metric=name,
            value=result.value,
            threshold=result.threshold,
            message=message,
            since=ctx.now,
        )
        events = (Event(Reason.DRIFTED, f"{message}; no rollout is started", "Warning"),)
    elif not breaches and current is not None:
        drift = None
        events = (
            Event(
                Reason.DRIFT_RECOVERED,
                f"stable revision {stable} (version {version}): {current.metric} "
                "is within bounds again",
            ),
        )
    if drift != recorded.drift:
        recorded = recorded.model_copy(update={"drift": drift})
    if recorded is status:
        return None
    return Transition(recorded, events)


def _breaches(
    spec_analysis: Analysis | None,
    status: ModelDeploymentStatus,
    stable: str,
    gating: tuple[str, ...],
) -> dict[str, MetricAnalysis]:
    limit = spec_analysis.failure_limit if spec_analysis else 0
    found = {}
    for name in gating:
        result = status.analysis.get(name)
        if result is not None and result.revision == stable and result.consecutive_failures > limit:
            found[name] = result
    return found
