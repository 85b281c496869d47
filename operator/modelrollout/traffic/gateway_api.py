"""The Gateway API router: exact canary weights and header routes in the user's
HTTPRoute(s) (spec.strategy.canary.trafficRouting.gatewayAPI).

The three Services stay as the Service-selector router builds them, except that
`<name>` always selects one revision (the stable): the route, not a Service
spanning revisions, splits traffic between `<name>` and `<name>-canary`. How the
route itself is edited, and what is left alone, is httproute.py's.

Reads are cached for the life of one router (one reconcile), so observing,
checking and writing read each route once; a write drops its cache entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelrollout.api import GatewayAPIRouting, HeaderRoute, ModelDeploymentSpec
from modelrollout.api.ownership import Owner
from modelrollout.api.reasons import Reason
from modelrollout.rollout import RouteCheck
from modelrollout.traffic import httproute
from modelrollout.traffic.router import Backends, RouteName
from modelrollout.traffic.service_selector import ServiceSelectorRouter
from modelrollout.traffic.services import service_name_for

FORBIDDEN, NOT_FOUND = 403, 404
FIELD_MANAGER = "modelrollout"


class GatewayAPIRouter:
    def __init__(self, api: client.ApiClient, routing: GatewayAPIRouting) -> None:
        self._services = ServiceSelectorRouter(api)
        self._custom = client.CustomObjectsApi(api)
        self._routing = routing
        self._read: dict[str, Mapping[str, Any] | None] = {}
        # Routes the operator may not read (RBAC): reported, never raised.
        self._refused: dict[str, str] = {}

    def set_route(
        self, owner: Owner, spec: ModelDeploymentSpec, route: RouteName, backends: Backends
    ) -> None:
        if route != "main":
            self._services.set_route(owner, spec, route, backends)
            return
        stable, _ = backends.weights[0]
        canary_weight = sum(weight for _, weight in backends.weights[1:])
        # The stable Service first: the route sends its share to what `<name>` selects.
        self._services.set_route(owner, spec, "main", Backends.pinned(stable))
        refs = self._backends(owner)
        for name in self._names():
            self._edit(
                owner,
                name,
                lambda live: httproute.with_split(
                    live, owner.name, refs, 100 - canary_weight, canary_weight
                ),
            )

    def set_header_routes(
        self,
        owner: Owner,
        spec: ModelDeploymentSpec,
        routes: Sequence[HeaderRoute],
        revision: str | None,
    ) -> None:
        # Header rules send to `<name>-canary`, which the core points at `revision`.
        refs = self._backends(owner)
        for name in self._names():
            self._edit(
                owner,
                name,
                lambda live: httproute.with_header_routes(live, owner.name, refs, routes),
            )

    def read_routes(self, owner: Owner, spec: ModelDeploymentSpec) -> Mapping[RouteName, Backends]:
        routes = dict(self._services.read_routes(owner, spec))
        main, canary = routes.pop("main", None), routes.get("canary")
        stable = main.revision if main is not None else None
        splits = {self._split(owner, name) for name in self._names()}
        if stable is None or len(splits) != 1:
            return routes  # main left out: set it again
        (found,) = splits
        if found is None:
            return routes
        stable_share, canary_share = found
        if canary_share == 0:
            routes["main"] = Backends.pinned(stable)
        elif canary is not None and canary.revision is not None:
            routes["main"] = Backends(((stable, stable_share), (canary.revision, canary_share)))
        return routes

    def route_check(self, owner: Owner, spec: ModelDeploymentSpec) -> RouteCheck:
        refs, namespace = self._backends(owner), self._namespace(owner)
        checks = []
        for name in self._names():
            live = self._get(owner, name)
            if name in self._refused:
                checks.append(RouteCheck("no", Reason.ROUTE_INVALID, self._refused[name]))
            else:
                checks.append(httproute.check(live, name, namespace, owner.name, refs))
        return httproute.combine(checks)

    def header_routes(self, owner: Owner, spec: ModelDeploymentSpec) -> tuple[str, ...]:
        found = {
            names
            for name in self._names()
            if (live := self._get(owner, name)) is not None
            for names in [httproute.header_routes(live, owner.name)]
        }
        # Routes that disagree read as none, so the core sets them all again.
        return next(iter(found)) if len(found) == 1 else ()

    def _names(self) -> tuple[str, ...]:
        return self._routing.route_names

    def _namespace(self, owner: Owner) -> str:
        return self._routing.namespace or owner.namespace

    def _backends(self, owner: Owner) -> httproute.Backends:
        return httproute.Backends(
            stable=service_name_for(owner.name, "main"),
            canary=service_name_for(owner.name, "canary"),
            namespace=owner.namespace,
        )

    def _split(self, owner: Owner, name: str) -> tuple[int, int] | None:
        live = self._get(owner, name)
        return None if live is None else httproute.split(live, owner.name, self._backends(owner))

    def _get(self, owner: Owner, name: str) -> Mapping[str, Any] | None:
        if name not in self._read:
            try:
                found = self._custom.get_namespaced_custom_object(
                    httproute.GROUP,
                    httproute.VERSION,
                    self._namespace(owner),
                    httproute.PLURAL,
                    name,
                )
            except ApiException as error:
                if error.status == FORBIDDEN:
                    self._refused[name] = (
                        f"the operator may not read HTTPRoute {self._namespace(owner)}/{name} "
                        "(RBAC: get and patch on httproutes.gateway.networking.k8s.io; the "
                        "chart's rbac.gatewayAPI.enabled)"
                    )
                elif error.status != NOT_FOUND:
                    raise
                found = None
            self._read[name] = cast("Mapping[str, Any] | None", found)
        return self._read[name]

    def _edit(
        self,
        owner: Owner,
        name: str,
        change: Callable[[Mapping[str, Any]], Mapping[str, Any]],
    ) -> None:
        live = self._get(owner, name)
        refs = self._backends(owner)
        if live is None or not httproute.managed_rules(live, owner.name, refs):
            return  # route_check reports it; nothing here to write to
        edited = change(live)
        if httproute.apply_body(edited) == httproute.apply_body(live):
            return
        self._custom.patch_namespaced_custom_object(
            httproute.GROUP,
            httproute.VERSION,
            self._namespace(owner),
            httproute.PLURAL,
            name,
            httproute.apply_body(edited),
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type="application/apply-patch+yaml",
        )
        self._read.pop(name, None)
