"""The peering mode a replica runs in, chosen at start-up from whether Kopf's
peering object exists.

Given a peering name, Kopf makes peering mandatory: without the object it pauses
every handler until the object appears, and says nothing about it above DEBUG.
`kubectl apply -f crds/` installs the peering CRDs but no object (the Helm chart
makes it), so a first `modelrollout run` would sit there doing nothing. Instead:

- object found: mandatory peering, as before (a replica starts paused and acts
  only once it has seen that no peer has a higher priority);
- object absent, peering not required (the default): Kopf's optional peering.
  The replica acts at once, alone, and says so in a WARNING with the command that
  makes the object. Kopf keeps touching the object, so once it exists every
  replica running this way joins it within a peering lifetime and all but the
  highest-priority one pause. Until then a second replica would act too: that is
  the risk the warning names;
- object absent, peering required (`--require-peering`, the chart's setting): an
  ERROR naming the object, and mandatory peering: nothing is done until the
  object exists, then Kopf resumes by itself;
- the lookup failed (no permission, API down): mandatory peering, the safe side,
  with a WARNING.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelrollout.settings import OperatorSettings

GROUP = "kopf.dev"
VERSION = "v1"
CLUSTER_PLURAL = "clusterkopfpeerings"
NAMESPACED_PLURAL = "kopfpeerings"


@dataclass(frozen=True)
class PeeringLookup:
    """What the start-up lookup found. `missing`: the namespaces without the
    KopfPeering, or `(None,)` when the ClusterKopfPeering is absent."""

    missing: tuple[str | None, ...] = ()
    crd_missing: bool = False
    error: str | None = None


@dataclass(frozen=True)
class PeeringMode:
    """`mandatory` goes to Kopf's settings.peering.mandatory; `message` is logged
    at `level` once, at start-up."""

    mandatory: bool
    level: int
    message: str


def lookup_peering(api: client.ApiClient, settings: OperatorSettings) -> PeeringLookup:
    """Looks for the peering object(s) this replica would use: the
    ClusterKopfPeering when cluster-wide, else a KopfPeering in each watched
    namespace. Lists by name rather than GET: the chart's RBAC grants list/watch/
    patch on them (what Kopf needs), not get."""
    patterns = [ns for ns in settings.namespaces if _is_pattern(ns)]
    if patterns:
        return PeeringLookup(error=f"Kopf matches the namespace patterns {', '.join(patterns)}")
    custom = client.CustomObjectsApi(api)
    selector = f"metadata.name={settings.peering_name}"

    def found(namespace: str | None) -> bool:
        if namespace is None:
            listed = custom.list_cluster_custom_object(
                GROUP, VERSION, CLUSTER_PLURAL, field_selector=selector
            )
        else:
            listed = custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, NAMESPACED_PLURAL, field_selector=selector
            )
        return bool(cast("dict[str, Any]", listed).get("items"))

    try:
        where: tuple[str | None, ...] = settings.namespaces or (None,)
        return PeeringLookup(missing=tuple(ns for ns in where if not found(ns)))
    except ApiException as error:
        if error.status == 404:  # the resource itself is unknown: no peering CRDs
            return PeeringLookup(missing=settings.namespaces or (None,), crd_missing=True)
        return PeeringLookup(error=f"{error.status} {error.reason}")
    except Exception as error:  # a start-up check must not stop the operator
        return PeeringLookup(error=f"{type(error).__name__}: {error}")


def peering_mode(settings: OperatorSettings, lookup: PeeringLookup) -> PeeringMode:
    """How Kopf should peer, and what to tell the user about it."""
    if settings.standalone:
        return PeeringMode(
            mandatory=False,
            level=logging.INFO,
            message="Standalone (--standalone): no Kopf peering; run a single replica only.",
        )
    everywhere: tuple[str | None, ...] = settings.namespaces or (None,)
    if lookup.error is not None:
        return PeeringMode(
            mandatory=True,
            level=logging.WARNING,
            message=(
                f"Could not look for the {_objects(settings, everywhere)} ({lookup.error}). "
                "Peering stays on: this replica acts on nothing until Kopf finds the "
                f"object. Create it if it is missing: {_create(settings, everywhere)}; or "
                "pass --standalone (MODELROLLOUT_STANDALONE=true) to run a single replica."
            ),
        )
    if not lookup.missing:
        return PeeringMode(
            mandatory=True,
            level=logging.INFO,
            message=(
                f"Kopf peering through the {_objects(settings, everywhere)}: the "
                "highest-priority replica acts, the others wait (this one's priority: "
                f"{settings.priority})."
            ),
        )
    what = _objects(settings, lookup.missing)
    create = _create(settings, lookup.missing)
    if lookup.crd_missing:
        create = f"kubectl apply --server-side -f crds/kopf-peering.yaml (the CRDs), then {create}"
    if settings.peering_required:
        return PeeringMode(
            mandatory=True,
            level=logging.ERROR,
            message=(
                f"No {what} found, and peering is required (--require-peering, "
                "MODELROLLOUT_PEERING_REQUIRED=true): this replica acts on nothing until "
                f"it exists. Create it: {create}. Kopf resumes by itself once it exists. "
                "For a single replica, pass --standalone instead."
            ),
        )
    return PeeringMode(
        mandatory=False,
        level=logging.WARNING,
        message=(
            f"No {what} found: this replica runs standalone, without Kopf peering, and a "
            "second replica started the same way would act on the same ModelDeployments "
            f"too. For several replicas (high availability), create it: {create}; "
            "replicas already running join it within the peering lifetime "
            f"({settings.peering_lifetime_seconds} s) and all but one pause. To run a "
            "single replica on purpose and silence this warning, pass --standalone "
            "(MODELROLLOUT_STANDALONE=true); to wait for the object instead of running "
            "alone, pass --require-peering (MODELROLLOUT_PEERING_REQUIRED=true)."
        ),
    )


def _objects(settings: OperatorSettings, where: tuple[str | None, ...]) -> str:
    name = settings.peering_name
    if where == (None,):
        return f"ClusterKopfPeering {name!r} (cluster-wide)"
    plural = "s" if len(where) > 1 else ""
    return f"KopfPeering {name!r} in namespace{plural} {', '.join(str(ns) for ns in where)}"


def _is_pattern(namespace: str) -> bool:
    """Kopf takes globs (`ml-*`) and exclusions (`!kube-system`) as namespaces."""
    return any(c in namespace for c in "*?[!")


def _create(settings: OperatorSettings, where: tuple[str | None, ...]) -> str:
    """One copy-paste command per object (POSIX shell, no file needed)."""
    commands = []
    patterns = [ns for ns in where if ns is not None and _is_pattern(ns)]
    for namespace in where:
        if namespace in patterns:
            continue
        metadata = {"name": settings.peering_name}
        if namespace is not None:
            metadata["namespace"] = namespace
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ClusterKopfPeering" if namespace is None else "KopfPeering",
            "metadata": metadata,
        }
        commands.append(f"echo '{json.dumps(body)}' | kubectl apply -f -")
    if patterns:
        commands.append(
            f"a KopfPeering {settings.peering_name!r} in each namespace matching "
            + ", ".join(patterns)
        )
    return "; ".join(commands)
