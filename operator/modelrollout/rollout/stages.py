"""The blue/green stages, read from status: the one place that knows how they are stored.

Both the stages' own logic (bluegreen.py) and what depends on a stage without
running it (which checks are measured after the switch, which commands apply)
read the stage through here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelrollout.api import ModelDeploymentSpec, ModelDeploymentStatus

PREVIEW_STARTING = 0
PREVIEWING = 1
SCALING_UP = 2
VERIFYING = 3
VERIFIED = 4


def switched(spec: ModelDeploymentSpec, status: ModelDeploymentStatus) -> bool:
    """True while a blue/green rollout verifies its revision after the switch."""
    return (
        spec.strategy.blue_green is not None
        and status.rollout_in_flight
        and (status.current_step or 0) >= VERIFYING
    )
