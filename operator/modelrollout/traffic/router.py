"""The one interface the executor routes traffic through."""

from __future__ import annotations

from typing import Protocol

from modelrollout.api import ModelDeploymentSpec
from modelrollout.api.ownership import Owner
from modelrollout.rollout.observed import ServiceRole


class Router(Protocol):
    def route(
        self, owner: Owner, spec: ModelDeploymentSpec, role: ServiceRole, revision: str | None
    ) -> None:
        """Send the traffic of `role` to `revision` (None: every revision, by replica
        ratio). Idempotent: routing twice to the same place changes nothing."""
