"""Routing by Service selector: the replica-ratio canary and the blue/green switch
with nothing but Kubernetes Services."""

from __future__ import annotations

from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelrollout.api import ModelDeploymentSpec
from modelrollout.api import names as n
from modelrollout.api.ownership import Owner
from modelrollout.rollout.observed import ServiceRole
from modelrollout.traffic.services import service, service_name_for

CONFLICT = 409


class ServiceSelectorRouter:
    def __init__(self, api: client.ApiClient) -> None:
        self._core = client.CoreV1Api(api)

    def route(
        self, owner: Owner, spec: ModelDeploymentSpec, role: ServiceRole, revision: str | None
    ) -> None:
        wanted = service(owner, spec, role, revision)
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
