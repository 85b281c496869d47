"""What the scale subresource reports: the pods that answer clients.

An HPA (or KEDA) targets the ModelDeployment through `/scale`: it writes the
total to spec.replicas, reads status.replicas as the current count, and
averages its per-pod metrics (CPU, requests per second) over the pods that
status.selector matches. Those must be the pods that take client traffic now:
the stable and the canary once it has a weight, blue before the switch, green
after it. A preview, a shadow phase's challenger (which answers copies) or a
revision kept warm after the switch would dilute the average with pods that
serve no one, and the autoscaler would scale down under load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelrollout.api import names as n

if TYPE_CHECKING:
    from modelrollout.rollout.observed import Observed
    from modelrollout.rollout.outcome import Settled


def serving(settled: Settled) -> tuple[str, ...]:
    """The revisions that take client traffic as `settled` routes it."""
    main = settled.routes.get("main")
    if main is not None:
        return (main,)
    return tuple(sorted(revision for revision, weight in settled.split if weight > 0))


def replicas(observed: Observed, revisions: tuple[str, ...]) -> int:
    """Their pods, as their Deployments ask for them."""
    found = (observed.revision(revision) for revision in revisions)
    return sum(deployment.replicas for deployment in found if deployment is not None)


def selector(name: str, revisions: tuple[str, ...]) -> str:
    """A label selector for their pods (every revision's before one serves)."""
    owned = f"{n.LABEL_DEPLOYMENT}={name}"
    if not revisions:
        return owned
    return f"{owned},{n.LABEL_REVISION} in ({','.join(revisions)})"
