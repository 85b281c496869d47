"""The Gateway API router against the real API server, with the Gateway API CRDs
(GATEWAY_API_VERSION, standard and experimental channels) installed, so every
route the operator writes passes their schema and CEL rules: exact weights,
header rules, what is left alone, what is removed, and the three verification
outcomes.

No gateway runs here (none builds or installs on this machine: see
examples/gateway-api.md), so nothing in this module judges traffic: where a
test needs a route's status it writes it as a gateway controller would, and its
name says so. The traffic split through a real gateway is `make e2e-kind`'s.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from modelrollout.api import names as n
from modelrollout.traffic import httproute
from support.operator import OperatorProcess
from support.rollouts import SETTLE_SECONDS, Rollouts, plain_canary
from support.waiting import WaitTimeoutError, wait_for

pytestmark = pytest.mark.integration

ROUTE = "fraud-route"
TEAM_ROUTE = {"name": "team", "match": [{"headerName": "x-team", "headerValue": "ml"}]}
CONTROLLER = "example.com/written-by-the-test"


@pytest.fixture
def rollouts(operator: OperatorProcess, namespace: str) -> Iterator[Rollouts]:
    operator.cluster.install_gateway_api("standard")
    yield Rollouts(operator.cluster, namespace)


class Routes:
    """The user's HTTPRoute, as kubectl would make and read it."""

    def __init__(self, rollouts: Rollouts) -> None:
        self.custom = client.CustomObjectsApi(rollouts.kube.api)
        self.namespace = rollouts.namespace

    def create(self, service: str = "fraud") -> dict[str, Any]:
        body = {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": ROUTE, "annotations": {"owner": "fraud-team"}},
            "spec": {
                "parentRefs": [{"name": "gw"}],
                "hostnames": ["fraud.example"],
                "rules": [
                    {
                        "matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
                        "backendRefs": [{"name": "admin", "port": 8080}],
                    },
                    {
                        "matches": [{"path": {"type": "PathPrefix", "value": "/v2"}}],
                        "filters": [
                            {
                                "type": "RequestHeaderModifier",
                                "requestHeaderModifier": {
                                    "set": [{"name": "x-via", "value": "gateway"}]
                                },
                            }
                        ],
                        "backendRefs": [{"name": service, "port": 80}],
                    },
                ],
            },
        }
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            httproute.GROUP, httproute.VERSION, self.namespace, httproute.PLURAL, body
        )
        return created

    def get(self) -> dict[str, Any]:
        found: dict[str, Any] = self.custom.get_namespaced_custom_object(
            httproute.GROUP, httproute.VERSION, self.namespace, httproute.PLURAL, ROUTE
        )
        return found

    def report_as_a_gateway_controller_would(self, resolved: bool = True) -> None:
        """Write status.parents for the route's current generation, as a gateway's
        controller does; stands in for that controller's report, never for traffic."""
        route = self.get()
        generation = route["metadata"]["generation"]

        def condition(kind: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
            return {
                "type": kind,
                "status": "True" if ok else "False",
                "reason": reason,
                "message": message,
                "observedGeneration": generation,
                "lastTransitionTime": "2026-12-03T00:00:00Z",
            }

        status = {
            "parents": [
                {
                    "parentRef": {"name": "gw"},
                    "controllerName": CONTROLLER,
                    "conditions": [
                        condition("Accepted", True, "Accepted", ""),
                        condition(
                            "ResolvedRefs",
                            resolved,
                            "ResolvedRefs" if resolved else "BackendNotFound",
                            "" if resolved else "Service fraud-canary: no endpoints",
                        ),
                    ],
                }
            ]
        }
        self.custom.patch_namespaced_custom_object_status(
            httproute.GROUP,
            httproute.VERSION,
            self.namespace,
            httproute.PLURAL,
            ROUTE,
            {"status": status},
        )

    def rules(self) -> list[dict[str, Any]]:
        return list(self.get()["spec"]["rules"])


def routed(name: str, steps: list[dict[str, Any]], **routing: Any) -> dict[str, Any]:
    body = plain_canary(name, steps)
    body["spec"]["strategy"]["canary"]["trafficRouting"] = {
        "gatewayAPI": {"httpRoute": ROUTE, **routing}
    }
    return body


def wait_reported(
    rollouts: Rollouts, routes: Routes, name: str, what: str, predicate: Any
) -> dict[str, Any]:
    """Wait for `predicate(status)`, reporting the route for each generation the
    operator writes, as a gateway controller would."""

    def probe() -> dict[str, Any] | None:
        route = routes.get()
        parents = (route.get("status") or {}).get("parents") or []
        generations = {
            c.get("observedGeneration") for p in parents for c in p.get("conditions", [])
        }
        if generations != {route["metadata"]["generation"]}:
            routes.report_as_a_gateway_controller_would()
        status = rollouts.status(name)
        return status if predicate(status) else None

    try:
        return wait_for(probe, timeout=SETTLE_SECONDS, what=f"{name}: {what}", interval=0.5)
    except WaitTimeoutError as error:
        status = rollouts.status(name)
        raise AssertionError(f"{error}; {status.get('reason')}: {status.get('message')}") from None


def model_rule(rules: list[dict[str, Any]]) -> dict[str, Any]:
    return next(r for r in rules if r["matches"][0]["path"]["value"] == "/v2" and "name" not in r)


@pytest.mark.parametrize("channel", ["standard", "experimental"])
def test_exact_weights_and_a_header_route_with_a_controller_reporting_written_by_the_test(
    rollouts: Rollouts, channel: str
) -> None:
    rollouts.kube.install_gateway_api(channel)
    routes = Routes(rollouts)
    created = routes.create()
    admin_rule = copy.deepcopy(created["spec"]["rules"][0])
    rollouts.create(
        routed("fraud", [{"setHeaderRoute": TEAM_ROUTE}, {"setWeight": 5}, {"pause": {}}])
    )
    rollouts.wait_phase("fraud", "Healthy")
    assert routes.get()["metadata"]["generation"] == 1, "nothing is written before a rollout"
    stable = next(iter(rollouts.replicas("fraud")))

    rollouts.patch_spec("fraud", {"model": {"version": "2"}})
    status = wait_reported(
        rollouts, routes, "fraud", "the 5% step", lambda s: s.get("reason") == "AwaitingPromotion"
    )
    canary = status["canaryRevision"]
    assert status["currentStep"] == 2 and status["canaryWeight"] == 5
    assert status["trafficRouting"] == {
        "routes": [ROUTE],
        "weights": {stable: 95, canary: 5},
        "headerRoutes": ["team"],
        "verified": "yes",
        "message": "",
    }
    shown = rollouts.cli("status", "fraud").stdout
    assert f"Route:     HTTPRoute {ROUTE}: 95% to {stable}, 5% to {canary}" in shown
    assert "header routes to the canary: team" in shown and "Accepted, ResolvedRefs" in shown
    assert rollouts.replicas("fraud") == {stable: (4, 4), canary: (1, 1)}
    rules = routes.rules()
    assert rules[0] == admin_rule, "the user's other rule is left byte for byte"
    weighted = model_rule(rules)
    assert [(r["name"], r["weight"]) for r in weighted["backendRefs"]] == [
        ("fraud", 95),
        ("fraud-canary", 5),
    ]
    assert weighted["filters"] == created["spec"]["rules"][1]["filters"]
    team = next(r for r in rules if r.get("name") == "modelrollout-fraud-team")
    assert team["matches"][0]["headers"] == [{"type": "Exact", "name": "x-team", "value": "ml"}]
    assert [r["name"] for r in team["backendRefs"]] == ["fraud-canary"]
    assert rollouts.selector("fraud")[n.LABEL_REVISION] == stable, "the route splits, not pods"
    managers = {m["manager"] for m in routes.get()["metadata"]["managedFields"]}
    assert "modelrollout" in managers

    rollouts.cli("promote", "fraud")
    wait_reported(rollouts, routes, "fraud", "promoted", lambda s: s.get("phase") == "Healthy")
    route = routes.get()
    assert route["spec"]["rules"][0] == admin_rule
    assert [r.get("name") for r in route["spec"]["rules"]] == [None, None], "header rule removed"
    assert [
        (r["name"], r["weight"]) for r in model_rule(route["spec"]["rules"])["backendRefs"]
    ] == [("fraud", 100)], "the canary backendRef the operator added is gone"
    assert route["metadata"]["annotations"] == {"owner": "fraud-team"}
    assert rollouts.selector("fraud")[n.LABEL_REVISION] == canary


def test_with_no_controller_reporting_the_step_waits_and_says_so(rollouts: Rollouts) -> None:
    routes = Routes(rollouts)
    routes.create(service="quiet")
    rollouts.create(routed("quiet", [{"setWeight": 10}, {"pause": {}}]))
    rollouts.wait_phase("quiet", "Healthy")
    rollouts.patch_spec("quiet", {"model": {"version": "2"}})
    status = rollouts.wait_status(
        "quiet", "waiting on the route", lambda s: "onNoStatus: Wait" in s.get("message", "")
    )
    assert status["reason"] == "AwaitingRoute" and status["currentStep"] == 0
    assert "no gateway controller reports Accepted and ResolvedRefs" in status["message"]
    weights = [(r["name"], r["weight"]) for r in model_rule(routes.rules())["backendRefs"]]
    assert weights == [("quiet", 90), ("quiet-canary", 10)], "written, then read back"


def test_a_route_rejected_by_a_controller_written_by_the_test_keeps_traffic_on_stable(
    rollouts: Rollouts,
) -> None:
    routes = Routes(rollouts)
    routes.create(service="picky")
    rollouts.create(routed("picky", [{"setWeight": 20}, {"pause": {}}]))
    rollouts.wait_phase("picky", "Healthy")
    rollouts.patch_spec("picky", {"model": {"version": "2"}})
    wait_for(
        lambda: len(model_rule(routes.rules())["backendRefs"]) == 2,
        timeout=SETTLE_SECONDS,
        what="the canary's weight written",
    )
    routes.report_as_a_gateway_controller_would(resolved=False)
    status = rollouts.wait_phase("picky", "Degraded")
    assert status["reason"] == "RouteRejected"
    assert (
        "ResolvedRefs=False (BackendNotFound): Service fraud-canary: no endpoints"
        in (status["message"])
    )
    wait_for(
        lambda: [r["name"] for r in model_rule(routes.rules())["backendRefs"]] == ["picky"],
        timeout=SETTLE_SECONDS,
        what="all traffic back on stable",
    )


def test_a_missing_route_is_degraded_and_nothing_is_created(rollouts: Rollouts) -> None:
    rollouts.create(routed("lost", [{"setWeight": 20}]))
    rollouts.wait_phase("lost", "Healthy")
    rollouts.patch_spec("lost", {"model": {"version": "2"}})
    status = rollouts.wait_phase("lost", "Degraded")
    assert status["reason"] == "RouteInvalid"
    assert f"HTTPRoute {rollouts.namespace}/{ROUTE} not found" in status["message"]
    assert status["canaryWeight"] == 0
    found = client.CustomObjectsApi(rollouts.kube.api).list_namespaced_custom_object(
        httproute.GROUP, httproute.VERSION, rollouts.namespace, httproute.PLURAL
    )
    assert found["items"] == [], "the operator never creates a user's route"


def test_blue_green_switches_through_the_route_with_a_controller_reporting_written_by_the_test(
    rollouts: Rollouts,
) -> None:
    routes = Routes(rollouts)
    routes.create(service="switch")
    body = plain_canary("switch", [{"setWeight": 50}], replicas=2)
    body["spec"]["strategy"] = {
        "blueGreen": {
            "previewReplicas": 1,
            "autoPromotionSeconds": 0,
            "scaleDownDelaySeconds": 30,
            "trafficRouting": {"gatewayAPI": {"httpRoute": ROUTE}},
        }
    }
    rollouts.create(body)
    rollouts.wait_phase("switch", "Healthy")
    blue = next(iter(rollouts.replicas("switch")))
    rollouts.patch_spec("switch", {"model": {"version": "2"}})
    seen: list[list[tuple[str, int]]] = []

    def switched_then_promoted(status: dict[str, Any]) -> bool:
        refs = [(r["name"], r["weight"]) for r in model_rule(routes.rules())["backendRefs"]]
        if refs not in seen:
            seen.append(refs)
        return status.get("phase") == "Healthy" and status.get("stableVersion") == "2"

    status = wait_reported(rollouts, routes, "switch", "promoted", switched_then_promoted)
    assert [("switch", 0), ("switch-canary", 100)] in seen, f"the route switched: {seen}"
    assert seen[-1] == [("switch", 100)], "then back to <name> alone, which selects green"
    assert rollouts.selector("switch")[n.LABEL_REVISION] == status["stableRevision"] != blue
