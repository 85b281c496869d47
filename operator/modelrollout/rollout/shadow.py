"""Shadow phases: the challenger answers copies of live requests that no client sees.

During a canary `shadow` step, or a blue/green rollout's Shadowing stage (after
the preview is ready, before it can be promoted), the stable revision's model
servers copy `percent`% of their requests to the `<name>-canary` Service and
compare its answers with their own. The canary runs pods for the copies but
takes no client traffic (a canary step keeps the weight at 0; validation.py
refuses a shadow step after traffic has moved), and the stable keeps every
replica. The phase lasts `duration`, like a timed pause, and ends once the
metrics marked `shadow: true` pass; the other metrics, judged on traffic the
canary answers, wait for what follows (measurement.py).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from modelrollout.api import BlueGreenStage
from modelrollout.rollout import clock, stages
from modelrollout.rollout.observed import Mirror

if TYPE_CHECKING:
    from datetime import datetime

    from modelrollout.api import ModelDeploymentSpec, ModelDeploymentStatus, ShadowStep


def current(spec: ModelDeploymentSpec, status: ModelDeploymentStatus) -> ShadowStep | None:
    """The shadow phase the rollout is in, if any."""
    if not status.rollout_in_flight or status.rollout_source == "Undo":
        return None
    canary, blue_green = spec.strategy.canary, spec.strategy.blue_green
    if blue_green is not None:
        shadowing = stages.known_stage(status) == BlueGreenStage.SHADOWING
        return blue_green.shadow if shadowing else None
    assert canary is not None, "neither canary nor blue/green"
    index = status.current_step or 0
    return canary.steps[index].shadow if index < len(canary.steps) else None


def pods(replicas: int, percent: int) -> int:
    """Canary pods for `percent`% of the stable's requests: the share they would
    answer as traffic, at least 1."""
    return min(replicas, max(1, math.ceil(replicas * percent / 100))) if replicas else 0


def mirror(step: ShadowStep | None, stable: str, canary: str) -> Mirror | None:
    return None if step is None else Mirror(step.percent, stable, canary)


def until(step: ShadowStep, who: str, ends: datetime) -> str:
    """What a shadow phase is doing until it ends, for status.message."""
    return (
        f"the {who} answers a copy of {step.percent}% of requests, seen by no client, "
        f"until {clock.stamp(ends)}"
    )
