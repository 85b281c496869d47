"""What is measured now, and so what is judged: one rule for both sides.

The I/O layer (modelrollout.metrics, run by the handlers) measures exactly what
`request()` asks for, and plan() judges the checks `scope()` names for the
same status, so a check is never measured without being judged, nor judged
while nobody measures it.

- A rollout in flight: the new revision, every metric and the webhook; after a
  blue/green switch not the compareTo metrics (the stable revision no longer
  has the traffic to compare with). An undo is not analysed: it goes back to a
  revision that served.
- No rollout: the stable revision, the drift watch (metrics without compareTo,
  which have nothing to compare with; not the webhook, which gates rollouts).
  It is measured only while Healthy: Degraded or scaling, nothing settled serves.
- During a canary shadow step, only the metrics marked `shadow: true` (and the
  webhook); outside one, only the others: the copies' comparison is measured
  while copies are sent, the canary's own answers once it answers clients.
- Without a configured analysis, nothing.

A check is due when its last measurement (status.analysis[name].measuredAt) is an
interval old, or there is none of the revision now measured: a reconcile also
runs for watch events, and measuring on each would count several measurements
per interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from modelrollout.rollout import shadow, stages
from modelrollout.rollout.analysis import WEBHOOK_CHECK
from modelrollout.rollout.query_variables import QueryContext, variables

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from modelrollout.api import Analysis, ModelDeploymentSpec, ModelDeploymentStatus, Phase

Purpose = Literal["rollout", "drift-watch"]


@dataclass(frozen=True)
class Scope:
    """The checks that apply to `revision` now. `checks` are all measured (in the
    spec's order, the webhook last); `gating` are those that decide (no dryRun)."""

    purpose: Purpose
    revision: str
    checks: tuple[str, ...]
    gating: tuple[str, ...]


@dataclass(frozen=True)
class MeasurementRequest:
    """The checks to measure now, of `revision`, and the query variables to use.

    `variables` name the measured revision as `version`/`revision`;
    `stable_variables` name the stable one, for the stable side of
    `compareTo: stable`.
    """

    purpose: Purpose
    revision: str
    metrics: tuple[str, ...]
    webhook: bool
    variables: Mapping[str, str]
    stable_variables: Mapping[str, str]

    @property
    def checks(self) -> tuple[str, ...]:
        return (*self.metrics, WEBHOOK_CHECK) if self.webhook else self.metrics


def scope(
    spec: ModelDeploymentSpec,
    status: ModelDeploymentStatus,
    *,
    after_switch: bool | None = None,
) -> Scope | None:
    """What applies for `status` (None: nothing is measured or judged).
    `after_switch` asks about a blue/green switch before it happens."""
    analysis = spec.analysis
    if analysis is None or not analysis.configured:
        return None
    if status.rollout_in_flight:
        if status.rollout_source == "Undo" or status.canary_revision is None:
            return None
        switched = stages.switched(spec, status) if after_switch is None else after_switch
        return _scope(
            analysis,
            "rollout",
            status.canary_revision,
            comparisons=not switched,
            shadowing=shadow.current(spec, status) is not None,
        )
    if status.stable_revision is None:
        return None
    return _scope(analysis, "drift-watch", status.stable_revision, comparisons=False)


def watches_drift(spec: ModelDeploymentSpec, phase: Phase | None) -> bool:
    """Whether the drift watch measures the stable revision in `phase`."""
    if phase != "Healthy" or spec.analysis is None or not spec.analysis.configured:
        return False
    return bool(_names(spec.analysis, "drift-watch", comparisons=False, gating_only=False))


def request(
    spec: ModelDeploymentSpec,
    status: ModelDeploymentStatus,
    now: datetime,
    *,
    namespace: str,
    name: str,
) -> MeasurementRequest | None:
    """The measurements due now; None when none is."""
    applies = scope(spec, status)
    if applies is None or (
        applies.purpose == "drift-watch" and not watches_drift(spec, status.phase)
    ):
        return None
    assert spec.analysis is not None  # scope() is None without analysis
    interval = spec.analysis.interval_seconds
    due = []
    for check in applies.checks:
        last = status.analysis.get(check)
        if (
            last is None
            or last.measured_at is None
            or last.revision != applies.revision
            or (now - last.measured_at).total_seconds() >= interval
        ):
            due.append(check)
    if not due:
        return None
    stable_revision, stable_version = status.stable_revision or "", status.stable_version or ""
    context = QueryContext(
        namespace=namespace,
        name=name,
        # While no rollout runs, the stable revision stands in for the canary.
        canary_revision=status.canary_revision or stable_revision,
        canary_version=status.canary_version or stable_version,
        stable_revision=stable_revision,
        stable_version=stable_version,
        interval_seconds=interval,
    )
    return MeasurementRequest(
        purpose=applies.purpose,
        revision=applies.revision,
        metrics=tuple(check for check in due if check != WEBHOOK_CHECK),
        webhook=WEBHOOK_CHECK in due,
        variables=variables(context, "canary" if applies.purpose == "rollout" else "stable"),
        stable_variables=variables(context, "stable"),
    )


def _scope(
    analysis: Analysis,
    purpose: Purpose,
    revision: str,
    *,
    comparisons: bool,
    shadowing: bool = False,
) -> Scope:
    return Scope(
        purpose=purpose,
        revision=revision,
        checks=_names(
            analysis, purpose, comparisons=comparisons, gating_only=False, shadowing=shadowing
        ),
        gating=_names(
            analysis, purpose, comparisons=comparisons, gating_only=True, shadowing=shadowing
        ),
    )


def _names(
    analysis: Analysis,
    purpose: Purpose,
    *,
    comparisons: bool,
    gating_only: bool,
    shadowing: bool = False,
) -> tuple[str, ...]:
    names = [
        metric.name
        for metric in analysis.metrics
        if (comparisons or metric.compare_to is None)
        and not (gating_only and metric.dry_run)
        and metric.shadow == shadowing
    ]
    if purpose == "rollout" and analysis.webhook is not None:
        names.append(WEBHOOK_CHECK)
    return tuple(names)
