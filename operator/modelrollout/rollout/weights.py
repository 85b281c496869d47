"""Replica-ratio weight arithmetic: a canary weight realised by pod counts.

Without a router, one `<md-name>` Service spans stable and canary pods, so the
share of traffic is the share of ready pods.

Rounding: canary pods = ceil(replicas * weight / 100), at least 1 when the weight
is above 0 (a canary with no pod measures nothing) and at most `replicas`. With 4
replicas, 10% is 1 pod (25% in effect): small fleets over-shoot, never under-shoot.

Capacity: the canary is scaled up first and the stable shrinks only by canary
pods that are available, so ready capacity stays at `replicas` throughout; the
fleet surges by at most the canary pods still starting.

Autoscaled totals (an HPA writing spec.replicas through the scale subresource):
every reconcile splits the total of the moment. The stable never drops below its
share of it (total - canary wanted), and it covers for canary pods that are not
available only with pods it already has, plus those of a revision going away (a
superseded canary's ready pods, whose traffic it takes back). A scale-up grows it
straight to its share, rather than to a surge it would give back a moment later
when the new canary pods come up: a count that rises then falls within one
scaling event is the flip-flop users of other rollout controllers report.
"""

from __future__ import annotations

import math


def canary_replicas(replicas: int, weight: int) -> int:
    if weight <= 0 or replicas <= 0:
        return 0
    return min(replicas, max(1, math.ceil(replicas * weight / 100)))


def stable_replicas(
    replicas: int, canary_wanted: int, canary_available: int, budget: int | None = None
) -> int:
    """Stable pods to keep: its share of `replicas`, and for canary pods not available
    at most `budget` (what it has plus the ready pods of revisions going away; None:
    as many as it takes)."""
    share = max(0, replicas - canary_wanted)
    covering = max(0, replicas - min(canary_wanted, canary_available))
    return max(share, covering if budget is None else min(budget, covering))


def effective_weight(canary_ready: int, stable_ready: int) -> int:
    """The percentage of traffic the canary takes when one Service spans both."""
    total = canary_ready + stable_ready
    return 0 if total == 0 else round(100 * canary_ready / total)


def step_weight(weights_so_far: list[int]) -> int:
    """The weight a step runs at: the last setWeight reached, 0 before any."""
    return weights_so_far[-1] if weights_so_far else 0
