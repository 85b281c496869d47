"""Traffic routers: how a rollout's weights and switches reach clients.

Without a service mesh, a canary weight is the replica ratio behind the one
`<md-name>` Service and blue/green switches that Service's selector; both are
Service selectors (`ServiceSelectorRouter`). A router for Gateway API
HTTPRoutes sets the weights the core asks for exactly, through the same Protocol.
"""

from kubernetes import client

from modelrollout.api import ModelDeploymentSpec
from modelrollout.traffic.gateway_api import GatewayAPIRouter
from modelrollout.traffic.router import Backends, RouteName, Router
from modelrollout.traffic.service_selector import ServiceSelectorRouter

__all__ = [
    "Backends",
    "GatewayAPIRouter",
    "RouteName",
    "Router",
    "ServiceSelectorRouter",
    "router_for",
]


def router_for(api: client.ApiClient, spec: ModelDeploymentSpec) -> Router:
    """The router the spec asks for: Gateway API with trafficRouting, else Service selectors."""
    routing = spec.strategy.traffic_routing
    if routing is not None:
        return GatewayAPIRouter(api, routing.gateway_api)
    return ServiceSelectorRouter(api)
