"""The one interface traffic goes through: routes, and the revisions behind them.

What routers do, whatever realises it: send a route's traffic to revisions in
given shares, read back what is in effect, and say whether what is in effect
is what was asked (yes, no, or cannot tell). A route is one of the core's
three (main, canary, preview) or a named extra one (a header route, a mirror)
that a router may offer. A router that cannot set exact shares (Service
selectors) spans the revisions, so the share is that of their ready pods, which
the core sizes for it; one that can (Gateway API HTTPRoutes) sets `weights`
exactly and reads them back. The decision core asks for the shares it wants
(RouteService.weights); only this layer knows how they happen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from modelrollout.api import ModelDeploymentSpec
from modelrollout.api.ownership import Owner

# "main", "canary", "preview" (rollout.observed.SERVICE_ROLES) or a named extra route.
RouteName = str
Verification = Literal["yes", "no", "unknown"]


@dataclass(frozen=True)
class Backends:
    """Where a route sends its traffic: percent per revision, in the core's order.
    Empty: every revision of the ModelDeployment, each by its share of ready pods
    (what a router that cannot weight reads back from a route spanning revisions).
    """

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

    def verify(
        self, owner: Owner, spec: ModelDeploymentSpec, route: RouteName, backends: Backends
    ) -> Verification:
        """Whether `route` sends its traffic to `backends` now: "unknown" when
        this router cannot see it (a replica-ratio split is kube-proxy's)."""
