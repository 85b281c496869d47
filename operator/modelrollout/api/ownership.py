"""Who owns the objects the operator makes: the ModelDeployment's identity and
the labels every owned object carries (docs/architecture.md, "Names")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelrollout.api import names as n

# (namespace, name): what the handlers key each object's state by.
ObjectKey = tuple[str, str]


def owned_selector(md_name: str) -> str:
    """The label selector of everything the operator made for `md_name`."""
    return f"{n.LABEL_DEPLOYMENT}={md_name},{n.LABEL_MANAGED_BY}={n.MANAGER}"


@dataclass(frozen=True)
class Owner:
    """The ModelDeployment that owns what the builders make."""

    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, Any]:
        """An owner reference: deleting the ModelDeployment garbage-collects the object."""
        return {
            "apiVersion": n.API_VERSION,
            "kind": n.KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def common_labels(md_name: str) -> dict[str, str]:
    return {
        n.LABEL_NAME: md_name,
        n.LABEL_MANAGED_BY: n.MANAGER,
        n.LABEL_DEPLOYMENT: md_name,
    }
