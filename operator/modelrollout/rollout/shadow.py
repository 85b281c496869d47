"""Shadow steps: the challenger answers copies of live requests that no client sees.

During a canary `shadow` step the stable revision's model servers copy
`percent`% of their requests to the `<name>-canary` Service and compare its
answers with their own. The canary runs pods for the copies but takes no client
traffic (the step keeps the weight at 0; validation.py refuses a shadow step
after traffic has moved), and the stable keeps every replica. The step lasts
`duration`, like a timed pause, and ends once the metrics marked `shadow: true`
pass; the other metrics, judged on traffic the canary answers, wait for the
weighted steps (measurement.py).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from modelrollout.rollout.observed import Mirror

if TYPE_CHECKING:
    from modelrollout.api import ModelDeploymentSpec, ModelDeploymentStatus, ShadowStep


def current(spec: ModelDeploymentSpec, status: ModelDeploymentStatus) -> ShadowStep | None:
    """The shadow step the rollout is at, if any."""
    canary = spec.strategy.canary
    if canary is None or not status.rollout_in_flight or status.rollout_source == "Undo":
        return None
    index = status.current_step or 0
    return canary.steps[index].shadow if index < len(canary.steps) else None


def pods(replicas: int, percent: int) -> int:
    """Canary pods for `percent`% of the stable's requests: the share they would
    answer as traffic, at least 1."""
    return min(replicas, max(1, math.ceil(replicas * percent / 100))) if replicas else 0


def mirror(step: ShadowStep | None, stable: str, canary: str) -> Mirror | None:
    return None if step is None else Mirror(step.percent, stable, canary)
