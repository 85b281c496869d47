"""The Services a ModelDeployment owns: `<md>` (what clients call), `<md>-canary`
and `<md>-preview`. Pure builders; the routers apply them."""

from __future__ import annotations

from typing import Any

from modelrollout.api import ModelDeploymentSpec
from modelrollout.api import names as n
from modelrollout.api.ownership import Owner, common_labels
from modelrollout.rollout import ServiceRole

SERVICE_ROLE_LABEL = f"{n.GROUP}/service-role"


def service_name_for(md_name: str, role: ServiceRole) -> str:
    if role == "main":
        return n.service_name(md_name)
    if role == "canary":
        return n.canary_service_name(md_name)
    return n.preview_service_name(md_name)


def service(
    owner: Owner, spec: ModelDeploymentSpec, role: ServiceRole, revision: str | None
) -> dict[str, Any]:
    """A Service of the ModelDeployment, selecting one revision or, with None,
    every revision (the replica-ratio canary: weights are replica counts)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service_name_for(owner.name, role),
            "namespace": owner.namespace,
            "labels": {**common_labels(owner.name), SERVICE_ROLE_LABEL: role},
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": n.selector_labels(owner.name, revision),
            "ports": [
                {
                    "name": "http",
                    "protocol": "TCP",
                    "port": spec.service.port,
                    "targetPort": spec.service.target_port,
                }
            ],
        },
    }
