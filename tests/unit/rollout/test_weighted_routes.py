"""The core asks routers for the shares it wants, so a router that sets exact
weights (Gateway API) needs nothing from the core beyond RouteService.weights and
Observed.route_weights; Service selectors keep realising them by replica counts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

import pytest
from kubernetes import client
from rollout_world import T0, make_spec

from modelrollout.api import (
    HeaderMatch,
    HeaderRoute,
    ModelDeploymentSpec,
    parse_status,
    spec_revision,
)
from modelrollout.api.ownership import Owner
from modelrollout.kube.executor import Executor
from modelrollout.rollout import (
    Observed,
    RevisionObservation,
    RouteCheck,
    RouteService,
    SetHeaderRoutes,
    plan,
)
from modelrollout.traffic import Backends, RouteName

pytestmark = pytest.mark.unit

SPEC = make_spec(replicas=4, version="2", steps=[{"setWeight": 25}, {"pause": {}}])
CANARY = spec_revision(SPEC)
STATUS = parse_status(
    {
        "phase": "Progressing",
        "stableRevision": "old1",
        "stableVersion": "1",
        "canaryRevision": CANARY,
        "canaryVersion": "2",
        "currentStep": 0,
        "stepStartedAt": T0.isoformat(),
        "rolloutSource": "Spec",
        "rolloutStartedAt": T0.isoformat(),
    }
)
REVISIONS = (RevisionObservation("old1", "1", 3, 3, 3), RevisionObservation(CANARY, "2", 1, 1, 1))
ROUTES = {"main": None, "canary": CANARY, "preview": CANARY}
TEAM = HeaderMatch(header_name="x-team", header_value="ml")


def main_route(observed: Observed) -> list[RouteService]:
    actions = plan(SPEC, STATUS, observed, T0 + timedelta(seconds=5)).actions
    return [a for a in actions if isinstance(a, RouteService) and a.role == "main"]


def test_a_router_that_reads_weights_back_is_asked_again_when_they_differ() -> None:
    stale = Observed(1, REVISIONS, ROUTES, route_weights={"main": (("old1", 100), (CANARY, 0))})
    assert main_route(stale) == [RouteService("main", None, (("old1", 75), (CANARY, 25)))]
    current = Observed(1, REVISIONS, ROUTES, route_weights={"main": (("old1", 75), (CANARY, 25))})
    assert main_route(current) == []


def test_service_selectors_that_cannot_read_weights_are_not_asked_again() -> None:
    assert main_route(Observed(1, REVISIONS, ROUTES)) == []


class WeightingRouter:
    def __init__(self) -> None:
        self.routes: dict[RouteName, Backends] = {}
        self.headers: dict[str, str | None] = {}

    def set_route(
        self, owner: Owner, spec: ModelDeploymentSpec, route: RouteName, backends: Backends
    ) -> None:
        self.routes[route] = backends

    def read_routes(self, owner: Owner, spec: ModelDeploymentSpec) -> Mapping[RouteName, Backends]:
        return dict(self.routes)

    def route_check(self, owner: Owner, spec: ModelDeploymentSpec) -> RouteCheck | None:
        return RouteCheck("yes")

    def header_routes(self, owner: Owner, spec: ModelDeploymentSpec) -> tuple[str, ...] | None:
        return tuple(sorted(self.headers))

    def set_header_routes(
        self,
        owner: Owner,
        spec: ModelDeploymentSpec,
        routes: Sequence[HeaderRoute],
        revision: str | None,
    ) -> None:
        self.headers = {route.name: revision for route in routes}


def test_the_executor_hands_the_shares_to_the_router() -> None:
    router = WeightingRouter()
    owner = Owner("fraud", "ml", "uid")
    actions = (
        RouteService("main", None, (("old1", 75), (CANARY, 25))),
        RouteService("canary", CANARY),
        SetHeaderRoutes((HeaderRoute(name="team", match=(TEAM,)),), CANARY),
    )
    Executor(client.ApiClient(), router).apply(owner, SPEC, Observed(1), actions)
    assert router.routes == {
        "main": Backends((("old1", 75), (CANARY, 25))),
        "canary": Backends.pinned(CANARY),
    }
    assert router.headers == {"team": CANARY}
    assert Backends((("old1", 75), (CANARY, 25))).revision is None
