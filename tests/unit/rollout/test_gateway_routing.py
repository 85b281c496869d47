"""The canary with exact weights (trafficRouting.gatewayAPI), as the decision core
plans it: pods sized by setCanaryScale, the stable never shrunk, a step that
ends only on what the route reads back and the gateway reports, header routes
set and removed, and a rejected route that keeps traffic on stable."""

from __future__ import annotations

from typing import Any

import pytest
from rollout_world import World, deployed, make_spec

from modelrollout.api import ModelDeploymentSpec
from modelrollout.rollout import MetricVerdict, RouteCheck, RouteService, SetHeaderRoutes

pytestmark = pytest.mark.unit

TEAM_ROUTE = {"name": "team", "match": [{"headerName": "x-team", "headerValue": "ml"}]}


def routed_spec(steps: list[dict[str, Any]], **routing: Any) -> ModelDeploymentSpec:
    raw = make_spec(steps=steps).model_dump(by_alias=True, exclude_none=True, mode="json")
    raw["strategy"]["canary"]["trafficRouting"] = {
        "gatewayAPI": {"httpRoute": "fraud-route", **routing}
    }
    return type(make_spec()).model_validate(raw)


def rolling(spec: ModelDeploymentSpec, check: str = "yes") -> tuple[World, str]:
    """A deployed world with a gateway router, its spec changed to version 2."""
    world = deployed(spec)
    world.route_check = RouteCheck("yes")
    world.header_routes = ()
    world.settle()
    stable = world.revision
    world.route_check = RouteCheck(check, "", "no controller reports it")  # type: ignore[arg-type]
    world.change_spec(model={"version": "2"})
    return world, stable


def test_a_5_percent_step_on_4_replicas_is_5_percent_with_one_canary_pod() -> None:
    world, stable = rolling(routed_spec([{"setWeight": 5}, {"pause": {}}]))
    world.settle()
    canary = world.revision
    assert world.replicas() == {stable: 4, canary: 1}, "the stable keeps every replica"
    assert world.route_weights["main"] == ((stable, 95), (canary, 5))
    assert world.status.canary_weight == 5
    assert world.status.current_step == 1 and world.status.reason == "AwaitingPromotion"
    routed = world.status.traffic_routing
    assert routed is not None and routed.routes == ("fraud-route",)
    assert routed.weights == {stable: 95, canary: 5} and routed.verified == "yes"


def test_set_canary_scale_sizes_the_canary_apart_from_the_weight() -> None:
    steps = [{"setCanaryScale": {"replicas": 3}}, {"setWeight": 1}, {"pause": {}}]
    world, stable = rolling(routed_spec(steps))
    world.settle()
    assert world.replicas() == {stable: 4, world.revision: 3}
    assert world.route_weights["main"] == ((stable, 99), (world.revision, 1))


def test_a_step_waits_while_no_gateway_reports_the_route_and_says_so() -> None:
    world, _ = rolling(routed_spec([{"setWeight": 10}, {"pause": {}}]), check="unknown")
    result = world.settle()
    assert world.status.current_step == 0, "the step does not end on a route nobody reported"
    assert world.status.reason == "AwaitingRoute"
    assert "onNoStatus: Wait" in world.status.message
    assert result.requeue_after is not None and result.requeue_after <= 5
    world.route_check = RouteCheck("yes")
    world.settle()
    assert world.status.current_step == 1


def test_on_no_status_proceed_goes_on_without_a_report() -> None:
    spec = routed_spec([{"setWeight": 10}, {"pause": {}}], onNoStatus="Proceed")
    world, _ = rolling(spec, check="unknown")
    world.settle()
    assert world.status.current_step == 1 and world.status.reason == "AwaitingPromotion"


def test_a_rejected_route_is_degraded_and_traffic_goes_back_to_stable() -> None:
    steps = [{"setHeaderRoute": TEAM_ROUTE}, {"setWeight": 20}, {"pause": {}}]
    world, stable = rolling(routed_spec(steps))
    world.settle()
    assert world.status.current_step == 2 and world.header_routes == ("team",)
    assert world.route_weights["main"] == ((stable, 80), (world.revision, 20))
    world.route_check = RouteCheck(
        "no", "RouteRejected", "HTTPRoute ml/fraud-route: parent ml/gw: ResolvedRefs=False"
    )
    world.settle()
    assert world.status.phase == "Degraded" and world.status.reason == "RouteRejected"
    assert "ResolvedRefs=False" in world.status.message
    assert "traffic stays on stable" in world.status.message
    assert world.routes["main"] == stable and "main" not in world.route_weights
    assert world.header_routes == (), "the header route is taken away too"


def test_a_missing_route_is_degraded_before_any_weight_moves() -> None:
    world, stable = rolling(routed_spec([{"setWeight": 20}]))
    world.route_check = RouteCheck("no", "RouteInvalid", "HTTPRoute ml/fraud-route not found")
    world.settle()
    assert world.status.reason == "RouteInvalid" and "not found" in world.status.message
    assert world.routes["main"] == stable


def test_header_routes_are_set_by_their_step_and_removed_at_promotion() -> None:
    steps = [
        {"setHeaderRoute": TEAM_ROUTE},
        {"pause": {}},
        {"setHeaderRoute": {"name": "team"}},
        {"setWeight": 50},
        {"pause": {}},
    ]
    world, stable = rolling(routed_spec(steps))
    result = world.settle()
    canary = world.revision
    assert world.header_routes == ("team",) and world.status.current_step == 1
    assert world.routes["main"] == stable, "weight 0: the route still sends all to stable"
    assert world.replicas()[canary] == 1, "a header route's canary has a pod to answer"
    world.send("promote")
    world.settle()
    assert world.header_routes == (), "setHeaderRoute without match removes it"
    assert world.status.current_step == 4
    world.send("promote")
    result = world.settle()
    assert world.status.phase == "Healthy" and world.status.stable_revision == canary
    assert world.routes["main"] == canary and "main" not in world.route_weights
    assert not [a for a in result.actions if isinstance(a, SetHeaderRoutes)]


def test_the_route_moves_everything_only_to_a_canary_with_every_replica() -> None:
    world, stable = rolling(routed_spec([{"setWeight": 25}]))
    world.plan()
    world.ready()
    world.plan()
    world.plan()
    canary = world.revision
    assert world.status.current_step == 1, "promoting"
    for _ in range(3):
        world.plan()  # the canary is scaled to 4 but none of the new pods is ready
    assert world.replicas()[canary] == 4
    assert world.route_weights["main"] == ((stable, 75), (canary, 25))
    world.ready()
    world.settle()
    assert world.status.phase == "Healthy" and world.routes["main"] == canary


def test_a_rollback_sends_the_route_back_to_stable() -> None:
    world, stable = rolling(routed_spec([{"setWeight": 30}, {"pause": {}}]))
    world.settle()
    world.send("abort")
    result = world.plan()
    assert RouteService("main", stable) in result.actions
    world.settle()
    assert world.routes["main"] == stable and "main" not in world.route_weights


def test_set_header_route_without_a_router_is_an_invalid_spec() -> None:
    world = deployed()
    world.change_spec(
        model={"version": "2"},
        strategy={"canary": {"steps": [{"setHeaderRoute": TEAM_ROUTE}, {"setWeight": 50}]}},
    )
    before = world.replicas()
    assert world.plan().actions == (), "nothing is touched for an unusable spec"
    assert world.replicas() == before
    assert world.status.reason == "InvalidSpec"
    assert "steps[0].setHeaderRoute: needs strategy.canary.trafficRouting" in world.status.message


BLUE_GREEN_ANALYSIS: dict[str, Any] = {
    "interval": "10s",
    "failureLimit": 0,
    "prometheus": {"address": "http://prometheus:9090"},
    "metrics": [{"name": "error-rate", "query": "errors", "max": 0.05}],
}


def routed_blue_green() -> tuple[World, str]:
    spec = make_spec(
        blue_green={
            "previewReplicas": 1,
            "autoPromotionSeconds": 0,
            "scaleDownDelaySeconds": 60,
            "trafficRouting": {"gatewayAPI": {"httpRoute": "fraud-route"}},
        },
        analysis=BLUE_GREEN_ANALYSIS,
    )
    world = deployed(spec)
    world.route_check, world.header_routes = RouteCheck("yes"), ()
    world.settle()
    blue = world.revision
    world.change_spec(model={"version": "2"})
    return world, blue


def measured(world: World, verdict: str) -> None:
    world.wait(10)
    world.verdicts["error-rate"] = MetricVerdict(verdict, world.now)  # type: ignore[arg-type]


def test_blue_green_switches_through_the_route_and_back_on_a_failure() -> None:
    world, blue = routed_blue_green()
    world.settle()
    green = world.revision
    assert world.routes["main"] == blue and "main" not in world.route_weights, "preview: blue"
    measured(world, "pass")
    world.settle()
    assert world.status.reason == "Verifying"
    assert world.route_weights["main"] == ((blue, 0), (green, 100)), "the route switched"
    assert world.status.canary_weight == 100
    measured(world, "fail")
    world.settle()
    assert world.status.reason == "RolledBack"
    assert world.routes["main"] == blue and "main" not in world.route_weights


def test_blue_green_waits_for_the_route_to_carry_the_switch_before_verifying() -> None:
    world, _ = routed_blue_green()
    world.settle()
    measured(world, "pass")
    world.route_check = RouteCheck("unknown", "", "no controller reports it")
    world.settle()
    assert world.status.reason == "AwaitingRoute"
    assert "switching: no controller reports it" in world.status.message
    assert world.status.stage == "ScalingUp", "not verifying a switch the gateway has not made"
    world.route_check = RouteCheck("yes")
    world.settle()
    assert world.status.reason == "Verifying"
    world.wait(60)
    measured(world, "pass")
    world.settle()
    assert world.status.phase == "Healthy" and world.routes["main"] == world.revision
    assert "main" not in world.route_weights
