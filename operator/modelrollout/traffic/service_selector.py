"""Routing by Service selector: the replica-ratio canary and the blue/green switch
with nothing but Kubernetes Services.

A route is one of the three Services; it either selects one revision, or spans
every revision of the ModelDeployment, so its split is the ratio of their ready
pods: the weights the core asks for are realised by replica counts, not here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelrollout.api import HeaderRoute, ModelDeploymentSpec
from modelrollout.api import names as n
from modelrollout.api.ownership import Owner, owned_selector
from modelrollout.rollout import SERVICE_ROLES, RouteCheck, ServiceRole
from modelrollout.traffic.router import Backends, RouteName
from modelrollout.traffic.services import SERVICE_ROLE_LABEL, service, service_name_for

CONFLICT = 409


class ServiceSelectorRouter:
    def __init__(self, api: client.ApiClient) -> None:
        self._core = client.CoreV1Api(api)

    def set_route(
        self, owner: Owner, spec: ModelDeploymentSpec, route: RouteName, backends: Backends
    ) -> None:
        role = _role(route)
        wanted = service(owner, spec, role, _selected(backends))
        try:
            self._core.create_namespaced_service(owner.namespace, cast(Any, wanted))
            return
        except ApiException as error:
            if error.status != CONFLICT:
                raise
        # A merge patch merges maps key by key: a revision key the new selector
        # drops must be sent as null to be removed. Lists (ports) are replaced.
        selector: dict[str, str | None] = {n.LABEL_REVISION: None, **wanted["spec"]["selector"]}
        self._core.patch_namespaced_service(
            service_name_for(owner.name, role),
            owner.namespace,
            {
                "metadata": {"labels": wanted["metadata"]["labels"]},
                "spec": {"selector": selector, "ports": wanted["spec"]["ports"]},
            },
            # Not the client's default strategic merge, which would merge ports by
            # number and keep a port the spec no longer has.
            _content_type="application/merge-patch+json",
        )

    def read_routes(self, owner: Owner, spec: ModelDeploymentSpec) -> Mapping[RouteName, Backends]:
        services = self._core.list_namespaced_service(
            owner.namespace, label_selector=owned_selector(owner.name)
        ).items
        routes: dict[RouteName, Backends] = {}
        for svc in services:
            metadata = svc.metadata
            role = ((metadata.labels if metadata else None) or {}).get(SERVICE_ROLE_LABEL)
            references = (metadata.owner_references if metadata else None) or []
            if role not in SERVICE_ROLES or not any(r.uid == owner.uid for r in references):
                continue
            revision = dict((svc.spec.selector if svc.spec else None) or {}).get(n.LABEL_REVISION)
            # A Service whose selector or ports differ from what this router builds
            # is left out, so the core routes it again and it is rewritten.
            if _matches(svc, service(owner, spec, role, revision)):
                routes[role] = Backends.pinned(revision) if revision else Backends()
        return routes

    def route_check(self, owner: Owner, spec: ModelDeploymentSpec) -> RouteCheck | None:
        return None  # a replica-ratio split is kube-proxy's: nothing reports it

    def header_routes(self, owner: Owner, spec: ModelDeploymentSpec) -> tuple[str, ...] | None:
        return None

    def set_header_routes(
        self,
        owner: Owner,
        spec: ModelDeploymentSpec,
        routes: Sequence[HeaderRoute],
        revision: str | None,
    ) -> None:
        if routes:
            raise ValueError("Service selectors cannot route requests by header")


def _role(route: RouteName) -> ServiceRole:
    if route not in SERVICE_ROLES:
        raise ValueError(f"route {route!r}: Service selectors route only {SERVICE_ROLES}")
    return route


def _selected(backends: Backends) -> str | None:
    """The revision the Service selects; None spans every revision, so a split is
    the ratio of their ready pods (the replica-ratio canary)."""
    return backends.revision


def _matches(live: client.V1Service, wanted: Mapping[str, Any]) -> bool:
    spec = live.spec
    if spec is None or dict(spec.selector or {}) != wanted["spec"]["selector"]:
        return False
    live_ports = [
        (p.name, p.port, p.target_port if isinstance(p.target_port, int) else str(p.target_port))
        for p in spec.ports or []
    ]
    wanted_ports = [(p["name"], p["port"], p["targetPort"]) for p in wanted["spec"]["ports"]]
    return live_ports == wanted_ports
