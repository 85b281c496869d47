"""The one interface traffic goes through: routes, and the revisions behind them.

What routers do, whatever realises it: send a route's traffic to revisions in
given shares and read back what is in effect. A route is one of the core's
three (main, canary, preview). A router that cannot set exact shares (Service
selectors) spans the revisions, so the share is that of their ready pods, which
the core sizes for it; one that can (Gateway API HTTPRoutes) sets `weights`
exactly, reads them back, says what the gateway reports of its routes (yes, no,
or cannot tell: route_check) and offers header routes; one that cannot answers
None to both. The decision core asks for the shares it wants
(RouteService.weights); only this layer knows how they happen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from modelrollout.api import HeaderRoute, ModelDeploymentSpec
from modelrollout.api.ownership import Owner
from modelrollout.rollout import RouteCheck

# "main", "canary", "preview" (rollout.observed.SERVICE_ROLES).
RouteName = str


@dataclass(frozen=True)
class Backends:
    """Where a route sends its traffic: percent per revision, in the core's order.
    Empty: every revision of the ModelDeployment, each by its share of ready pods
    (what a router that cannot weight reads back from a route spanning revisions).
    """

    # The revision the main Service keeps first (the stable), then the canary.
    weights: tuple[tuple[str, int], ...] = ()

    @classmethod
    def pinned(cls, revision: str) -> Backends:
        return cls(((revision, 100),))

    @property
    def revision(self) -> str | None:
        """The one revision taking all the traffic; None when it is split."""
        only = [revision for revision, weight in self.weights if weight > 0]
        return only[0] if len(only) == 1 else None


class Router(Protocol):
    def set_route(
        self, owner: Owner, spec: ModelDeploymentSpec, route: RouteName, backends: Backends
    ) -> None:
        """Make `route` send its traffic to `backends` (creating what it needs).
        Idempotent: setting the same backends twice changes nothing."""

    def read_routes(self, owner: Owner, spec: ModelDeploymentSpec) -> Mapping[RouteName, Backends]:
        """The routes in effect, each as this router would have set it; a route
        left out does not exist, or is not as the router builds it (set it again)."""

    def route_check(self, owner: Owner, spec: ModelDeploymentSpec) -> RouteCheck | None:
        """What the gateway reports of the routes written; None when nothing but
        kube-proxy reads them (Service selectors)."""

    def header_routes(self, owner: Owner, spec: ModelDeploymentSpec) -> tuple[str, ...] | None:
        """Names of the header routes in effect, sorted; None for a router without any."""

    def set_header_routes(
        self,
        owner: Owner,
        spec: ModelDeploymentSpec,
        routes: Sequence[HeaderRoute],
        revision: str | None,
    ) -> None:
        """Make the header routes exactly `routes`, sending to `revision`."""
