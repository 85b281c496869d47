"""spec.model.registry in a reconcile: resolve it before planning, move the
champion alias after.

The decision core never sees a registry: it gets a spec whose model is pinned to
one registry version (`ModelRef.resolved`), so the revision hash, the labels,
the servers' MODEL_URI and the history all follow the version, and a new version
behind a tracked alias is simply a new revision to roll out. What was resolved
is kept in status.registry; what serves is told back to the registry by moving
the champion alias (README: "Model registry").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from modelrollout.api import (
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    RegistryStatus,
    RegistryVersion,
)
from modelrollout.api.reasons import Reason
from modelrollout.registry import MlflowRegistry, RegistryError, RegistryUnavailableError
from modelrollout.settings import OperatorSettings

logger = logging.getLogger(__name__)

RegistryFactory = Callable[[str], MlflowRegistry]


class NoRegistryAddressError(RegistryError):
    """Neither the spec nor the operator says where the registry is."""


def reason_of(error: RegistryError) -> Reason:
    if isinstance(error, NoRegistryAddressError):
        return Reason.INVALID_SPEC
    if isinstance(error, RegistryUnavailableError):
        return Reason.REGISTRY_UNAVAILABLE
    return Reason.REGISTRY_VERSION_REJECTED


@dataclass(frozen=True)
class Resolved:
    """The spec as the core plans it, and what its registry model resolved to."""

    spec: ModelDeploymentSpec
    version: RegistryVersion | None = None
    status: RegistryStatus | None = None

    @property
    def alias(self) -> str | None:
        """The alias the written spec tracks (the planned spec pins its version)."""
        return self.status.alias if self.status is not None else None


def tracking_uri(spec: ModelDeploymentSpec, settings: OperatorSettings) -> str:
    registry = spec.model.registry
    uri = (registry.uri if registry else None) or settings.registry_uri
    if not uri:
        raise NoRegistryAddressError(
            "spec.model.registry has no uri and the operator has no MLFLOW_TRACKING_URI: "
            "say where the MLflow tracking server is"
        )
    return uri


def resolve(
    spec: ModelDeploymentSpec,
    previous: RegistryStatus | None,
    settings: OperatorSettings,
    now: datetime,
    connect: RegistryFactory = MlflowRegistry,
) -> Resolved:
    """Raises RegistryError when the registry cannot say which version to serve."""
    registry = spec.model.registry
    if registry is None:
        return Resolved(spec)
    uri = tracking_uri(spec, settings)
    client = connect(uri)
    if registry.alias is not None:
        found = client.alias(registry.name, registry.alias)
    else:
        found = client.version(registry.name, registry.version or "")
    if previous is not None and previous.resolved.version != found.version:
        logger.info(
            "registry model %s: %s now resolves to version %s (was %s)",
            registry.name,
            f"alias {registry.alias}" if registry.alias else "version",
            found.version,
            previous.resolved.version,
        )
    champion = registry.champion
    status = RegistryStatus(
        alias=registry.alias,
        resolved=found,
        resolved_at=now,
        champion_alias=champion,
        champion_version=(
            previous.champion_version
            if previous is not None and previous.champion_alias == champion
            else None
        ),
    )
    pinned = spec.model.resolved(found.version, found.sha256, uri)
    return Resolved(spec.model_copy(update={"model": pinned}), found, status)


def move_champion(
    spec: ModelDeploymentSpec,
    new_status: ModelDeploymentStatus,
    settings: OperatorSettings,
    connect: RegistryFactory = MlflowRegistry,
) -> RegistryStatus | None:
    """new_status.registry with the champion alias moved to the serving version
    (and recorded), or as it was when nothing needs moving. A failure is kept in
    its message and retried at the next reconcile: promotion does not wait on it."""
    registry, current = spec.model.registry, new_status.registry
    serving = _serving_version(new_status)
    if registry is None or current is None or serving is None:
        return current
    if serving.name != registry.name or current.champion_version == serving.version:
        return current
    try:
        connect(tracking_uri(spec, settings)).set_alias(
            registry.name, current.champion_alias, serving.version
        )
    except RegistryError as error:
        logger.warning(
            "registry model %s: could not move alias %s to version %s: %s",
            registry.name,
            current.champion_alias,
            serving.version,
            error,
        )
        return current.model_copy(update={"message": f"champion alias not moved: {error}"})
    logger.info(
        "registry model %s: alias %s -> version %s",
        registry.name,
        current.champion_alias,
        serving.version,
    )
    return current.model_copy(update={"champion_version": serving.version, "message": ""})


def _serving_version(status: ModelDeploymentStatus) -> RegistryVersion | None:
    latest = status.history[0] if status.history else None
    if latest is None or latest.revision != status.stable_revision:
        return None
    return latest.registry
