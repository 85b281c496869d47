"""Traffic routers: how a rollout's weights and switches reach clients.

Without a service mesh, a canary weight is the replica ratio behind the one
`<md-name>` Service and blue/green switches that Service's selector; both are
Service selectors (`ServiceSelectorRouter`). A router for Gateway API
HTTPRoutes sets the weights the core asks for exactly, through the same Protocol.
"""

from modelrollout.traffic.router import Backends, RouteName, Router, Verification
from modelrollout.traffic.service_selector import ServiceSelectorRouter

__all__ = ["Backends", "RouteName", "Router", "ServiceSelectorRouter", "Verification"]
