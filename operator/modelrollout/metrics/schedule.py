"""When to measure: at the analysis interval, not on every reconcile.

A reconcile also runs for watch events (pods getting ready, our own status
writes), so measuring each time would hammer Prometheus and, worse, count
several measurements per interval. A check is due when its last measurement
(status.analysis[name].measuredAt) is an interval old, or there is none for the
revision now judged. What is judged: during a rollout, the new revision (every
metric and the webhook; after a blue/green switch, `comparisons=False`, not the
compareTo metrics; nothing during `undo`, which is not analysed); while Healthy,
the stable revision (the drift watch: metrics without compareTo).
Otherwise nothing: Degraded or Progressing without a rollout has nothing to gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelrollout.rollout import analysis as core
from modelrollout.rollout.drift import watched

if TYPE_CHECKING:
    from datetime import datetime

    from modelrollout.api import Analysis, ModelDeploymentStatus


@dataclass(frozen=True)
class Due:
    """Checks to measure now, of `revision`; `rollout` False means the drift watch."""

    revision: str
    checks: tuple[str, ...]
    rollout: bool


def due(
    analysis: Analysis | None,
    status: ModelDeploymentStatus,
    now: datetime,
    *,
    comparisons: bool = True,
) -> Due | None:
    if analysis is None or not analysis.configured:
        return None
    if status.rollout_in_flight:
        if status.rollout_source == "Undo" or status.canary_revision is None:
            return None
        revision, rollout = status.canary_revision, True
        names = list(core.checks(analysis, gating_only=False, comparisons=comparisons))
    elif status.phase == "Healthy" and status.stable_revision is not None:
        revision, rollout = status.stable_revision, False
        names = [m.name for m in watched(analysis)]
    else:
        return None
    interval = analysis.interval_seconds
    checks = []
    for name in names:
        last = status.analysis.get(name)
        if (
            last is None
            or last.measured_at is None
            or last.revision != revision
            or (now - last.measured_at).total_seconds() >= interval
        ):
            checks.append(name)
    return Due(revision, tuple(checks), rollout) if checks else None
