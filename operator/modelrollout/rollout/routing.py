"""Exact weights through a router (spec.strategy.canary.trafficRouting).

With a Gateway API HTTPRoute the share of traffic is the weight written in the
route, not a ratio of pods, so three rules differ from the replica-ratio canary
(weights.py) and live here: how many canary pods a step runs (setCanaryScale,
or enough to take the step's share), which header routes the steps reached
have set, and when the route may be taken to carry what the step asked: only
when what the router reads back is the step's and the gateway reports the
route accepted (or, with `onNoStatus: Proceed`, reports nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelrollout.api import TrafficRoutingStatus
from modelrollout.api.reasons import Reason
from modelrollout.rollout.weights import canary_replicas

if TYPE_CHECKING:
    from collections.abc import Sequence

    from modelrollout.api import CanaryStep, HeaderRoute, ModelDeploymentSpec
    from modelrollout.rollout.observed import Observed

# Nothing wakes the operator when a gateway writes a route's status or when the
# router's write is read back: it looks again this often while it waits for one.
ROUTE_RECHECK_SECONDS = 5.0


def exact(spec: ModelDeploymentSpec) -> bool:
    """True when a router sets the canary's share exactly (a Gateway API route)."""
    return spec.strategy.traffic_routing is not None


def canary_scale(replicas: int, steps: Sequence[CanaryStep], index: int, weight: int) -> int:
    """The canary's pods at step `index` when weights are exact.

    The last setCanaryScale reached decides (a count, a percent of spec.replicas,
    or the step's weight); without one, enough pods to take the step's share, as
    the replica ratio would size them, so a 5% step on 4 replicas runs 1 pod and
    the stable keeps all 4, and a header route at weight 0 runs 1 pod to answer
    its requests. Promoting (index past the steps) needs every replica.
    """
    if index >= len(steps):
        return replicas
    scale = next(
        (s.set_canary_scale for s in reversed(steps[: index + 1]) if s.set_canary_scale),
        None,
    )
    if scale is None or scale.match_traffic_weight:
        if weight == 0 and header_routes_at(steps, index):
            return min(replicas, 1)
        return canary_replicas(replicas, weight)
    if scale.replicas is not None:
        return scale.replicas
    assert scale.weight is not None, "a setCanaryScale without a kind"
    return canary_replicas(replicas, scale.weight)


def header_routes_at(steps: Sequence[CanaryStep], index: int) -> tuple[HeaderRoute, ...]:
    """The header routes in effect once step `index` is reached: each name as its
    last setHeaderRoute set it; one without `match` removes that name."""
    active: dict[str, HeaderRoute] = {}
    for step in steps[: index + 1]:
        route = step.set_header_route
        if route is None:
            continue
        if route.match:
            active[route.name] = route
        else:
            active.pop(route.name, None)
    return tuple(active[name] for name in sorted(active))


@dataclass(frozen=True)
class RouteWait:
    """Why the step cannot count on the route yet; `degraded` when it never will
    without someone fixing the route (missing, not sending to `<name>`, rejected)."""

    reason: Reason
    message: str
    degraded: bool = False


def judge(
    spec: ModelDeploymentSpec,
    observed: Observed,
    main: str | None,
    split: tuple[tuple[str, int], ...],
    header_routes: tuple[str, ...],
) -> RouteWait | None:
    """None when the route carries `main`/`split` and `header_routes` and the gateway
    says so (or says nothing, with onNoStatus: Proceed)."""
    check = observed.route_check
    routing = spec.strategy.traffic_routing
    if check is None or routing is None:
        return None
    if check.verdict == "no":
        reason = (
            Reason.ROUTE_REJECTED if check.reason == Reason.ROUTE_REJECTED else Reason.ROUTE_INVALID
        )
        return RouteWait(reason, f"{check.message}; traffic stays on stable", degraded=True)
    carried = observed.routes.get("main", "absent") == main and (
        main is not None or observed.route_weights.get("main") == split
    )
    if not carried or (observed.header_routes or ()) != header_routes:
        return RouteWait(Reason.AWAITING_ROUTE, f"setting the HTTPRoute to {describe(split, main)}")
    if check.verdict == "unknown" and routing.gateway_api.on_no_status == "Wait":
        return RouteWait(
            Reason.AWAITING_ROUTE,
            f"{check.message}; waiting for it (trafficRouting.gatewayAPI.onNoStatus: Wait)",
        )
    return None


def status(spec: ModelDeploymentSpec, observed: Observed) -> TrafficRoutingStatus | None:
    """status.trafficRouting: the routes as the router read them back (names with
    their namespace when it is not the ModelDeployment's)."""
    routing = spec.strategy.traffic_routing
    check = observed.route_check
    if routing is None or check is None:
        return None
    gateway = routing.gateway_api
    prefix = f"{gateway.namespace}/" if gateway.namespace else ""
    main = observed.routes.get("main")
    weights = dict(observed.route_weights.get("main", ())) if main is None else {}
    if main is not None:
        weights = {main: 100}
    return TrafficRoutingStatus(
        routes=tuple(f"{prefix}{name}" for name in gateway.route_names),
        weights=weights,
        header_routes=observed.header_routes or (),
        verified=check.verdict,
        message=check.message,
    )


def describe(split: tuple[tuple[str, int], ...], main: str | None) -> str:
    """ "95% to 5d8f7c, 5% to 9a1b2e" (or "100% to 5d8f7c")"""
    if main is not None:
        return f"100% to {main}"
    return ", ".join(f"{weight}% to {revision}" for revision, weight in split)
