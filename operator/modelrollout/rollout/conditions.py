"""Phase to kstatus-compatible conditions.

Ready/Progressing/Paused/Degraded say what a person wants to know; Reconciling
and Stalled are the two "abnormal-true" conditions kstatus (Flux, kpt, cli-utils)
reads on custom resources: Reconciling=True means in progress, Stalled=True means
failed, neither with observedGeneration == generation means Current. So
`kubectl wait --for=condition=Ready` and GitOps health checks agree with the phase.
Drifted (the stable revision breaching a metric, see drift.py) is informational:
it never makes the object Stalled, because no reconcile can fix it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelrollout.api import Condition
from modelrollout.api.reasons import Reason
from modelrollout.rollout.outcome import Explanation

if TYPE_CHECKING:
    from datetime import datetime

    from modelrollout.api import DriftRecord, Phase
    from modelrollout.api.status import ConditionType

_TRUE_BY_PHASE: dict[Phase, frozenset[ConditionType]] = {
    "Healthy": frozenset({"Ready"}),
    "Progressing": frozenset({"Progressing", "Reconciling"}),
    "Paused": frozenset({"Paused", "Reconciling"}),
    "Degraded": frozenset({"Degraded", "Stalled"}),
}
CONDITION_TYPES: tuple[ConditionType, ...] = (
    "Ready",
    "Progressing",
    "Paused",
    "Degraded",
    "Reconciling",
    "Stalled",
)


def conditions_for(
    phase: Phase,
    reason: Explanation,
    generation: int,
    previous: tuple[Condition, ...],
    now: datetime,
    drift: DriftRecord | None = None,
) -> tuple[Condition, ...]:
    """Every condition type, each carrying the plan's reason and message, and
    Drifted, which carries the drift watch's (see drift.py; no phase sets it).

    lastTransitionTime moves only when a condition's status flips.
    """
    before = {condition.type: condition for condition in previous}

    def condition(condition_type: ConditionType, status: bool, why: Explanation) -> Condition:
        value = "True" if status else "False"
        old = before.get(condition_type)
        changed_at = old.last_transition_time if old and old.status == value else now
        return Condition(
            type=condition_type,
            status=value,
            reason=why.reason,
            message=why.message,
            last_transition_time=changed_at,
            observed_generation=generation,
        )

    conditions = [
        condition(condition_type, condition_type in _TRUE_BY_PHASE[phase], reason)
        for condition_type in CONDITION_TYPES
    ]
    drifted = (
        Explanation(Reason.DRIFTED, drift.message) if drift else Explanation(Reason.NO_DRIFT, "")
    )
    conditions.append(condition("Drifted", drift is not None, drifted))
    return tuple(conditions)
