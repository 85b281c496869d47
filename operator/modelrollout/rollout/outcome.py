"""The values the decision core returns: a Plan, and the steps it is built from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping

    from modelrollout.api import HeaderRoute, ModelDeploymentStatus, Phase
    from modelrollout.api.reasons import Reason
    from modelrollout.rollout.actions import Action
    from modelrollout.rollout.observed import Mirror, ServiceRole


@dataclass(frozen=True)
class Explanation:
    """Why the object is in its phase: a CamelCase reason and a sentence.

    Both go to status.reason/status.message and every condition; a Kubernetes
    Event announces it when it differs from the previous status's
    (Plan.reason_changed).
    """

    reason: Reason
    message: str


@dataclass(frozen=True)
class Event:
    """A transition that happened in this plan (rollout started, promoted, rolled back,
    command applied...): emit it once as a Kubernetes Event. Replanning the same
    state yields no events."""

    reason: Reason
    message: str
    type: Literal["Normal", "Warning"] = "Normal"


@dataclass(frozen=True)
class Plan:
    """The core's answer: apply `actions` in order, then write `new_status` as a
    whole, then ask again after `requeue_after` seconds if it is not None (a pause
    ending, a preview timer, a delayed scale-down, the analysis interval).

    Changes of child Deployments, of the object and of the command annotation
    must also trigger a plan: the core does not poll for readiness.
    """

    actions: tuple[Action, ...]
    new_status: ModelDeploymentStatus
    reason: Explanation
    requeue_after: float | None
    events: tuple[Event, ...] = ()
    # The reason differs from the one in the status planned from: announce it as
    # an Event too (unless one of `events` already has that reason). Kept apart
    # from `events`, which are transitions that happened and are counted as such.
    reason_changed: bool = False


@dataclass(frozen=True)
class Settled:
    """A stage's verdict for now: the world it wants and how to describe it."""

    replicas: Mapping[str, int]
    routes: Mapping[ServiceRole, str | None]
    phase: Phase
    reason: Explanation
    requeue_after: float | None = None
    # The weight in effect, for status.canaryWeight.
    weight: int = 0
    # The shares (revision, percent) wanted on a route that spans revisions (None).
    split: tuple[tuple[str, int], ...] = ()
    # The header routes wanted (sorted by name), sending their requests to the canary.
    header_routes: tuple[HeaderRoute, ...] = ()
    # Shadow traffic wanted (a shadow step); None: none.
    mirror: Mirror | None = None


@dataclass(frozen=True)
class Transition:
    """A stage moved the rollout on (next step, promoted, rolled back): plan again
    from the new status, within the same call."""

    status: ModelDeploymentStatus
    events: tuple[Event, ...] = field(default=())


StageResult = Settled | Transition
