"""Phase to kstatus-compatible conditions.

Ready/Progressing/Paused/Degraded say what a person wants to know; Reconciling
and Stalled are the two "abnormal-true" conditions kstatus (Flux, kpt, cli-utils)
reads on custom resources: Reconciling=True means in progress, Stalled=True means
failed, neither with observedGeneration == generation means Current. So
`kubectl wait --for=condition=Ready` and GitOps health checks agree with the phase.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelrollout.api import Condition

if TYPE_CHECKING:
    from datetime import datetime

    from modelrollout.api import Phase
    from modelrollout.api.status import ConditionType
    from modelrollout.rollout.outcome import Reason

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
    reason: Reason,
    generation: int,
    previous: tuple[Condition, ...],
    now: datetime,
) -> tuple[Condition, ...]:
    """Every condition type, each carrying the plan's reason and message.

    lastTransitionTime moves only when a condition's status flips.
    """
    before = {condition.type: condition for condition in previous}
    conditions = []
    for condition_type in CONDITION_TYPES:
        status = "True" if condition_type in _TRUE_BY_PHASE[phase] else "False"
        old = before.get(condition_type)
        changed_at = old.last_transition_time if old and old.status == status else now
        conditions.append(
            Condition(
                type=condition_type,
                status=status,
                reason=reason.reason,
                message=reason.message,
                last_transition_time=changed_at,
                observed_generation=generation,
            )
        )
    return tuple(conditions)
