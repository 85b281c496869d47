"""What the executor must do to the cluster; each action is idempotent.

A Plan lists actions in the order to apply them: scale-ups (and creations)
first, then Service selector changes, then scale-downs, then deletions, so
capacity is never removed before its replacement serves. Only actions that
change something the core observed are emitted (see Observed.routes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelrollout.api import HeaderRoute
    from modelrollout.rollout.observed import Mirror, ServiceRole


@dataclass(frozen=True)
class EnsureRevision:
    """Make Deployment `<md-name>-<revision>` exist with `replicas` replicas.

    Only ever the revision of the current spec: build it from spec.model and
    spec.template (labels and MODEL_* env of docs/architecture.md, "Names") when missing,
    otherwise set spec.replicas only: the revision is a hash of spec.model and
    spec.template, so an existing Deployment of it already runs what they ask.
    """

    revision: str
    replicas: int


@dataclass(frozen=True)
class ScaleRevision:
    """Set spec.replicas of the existing Deployment `<md-name>-<revision>`.

    Used for revisions other than the spec's (stable, old, undo target); their
    template is not in the spec any more, so never create one. If it has vanished
    meanwhile, do nothing: the next plan sees it gone.
    """

    revision: str
    replicas: int


@dataclass(frozen=True)
class DeleteRevision:
    """Delete Deployment `<md-name>-<revision>` (and so its pods); absent is fine."""

    revision: str


@dataclass(frozen=True)
class RouteService:
    """Point a Service's selector (creating the Service if missing).

    role "main" is `<md-name>`, "canary" is `<md-name>-canary`, "preview" is
    `<md-name>-preview`. The selector is `modelrollout.io/deployment: <md-name>`
    plus, when `revision` is not None, `modelrollout.io/revision: <revision>`.
    revision None on "main" is the canary split: `weights` (revision, percent)
    are the shares the core wants. A router that can weight sets them; with
    Service selectors one Service spans the stable and canary pods, so the share
    is their ratio, which the core sizes the revisions for.
    """

    role: ServiceRole
    revision: str | None
    weights: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class SetHeaderRoutes:
    """Make the router's header routes exactly `routes` (as setHeaderRoute steps
    define them), each sending its matching requests to `revision`; header routes
    it added before and not listed are removed."""

    routes: tuple[HeaderRoute, ...]
    revision: str | None


@dataclass(frozen=True)
class SetMirror:
    """Write the `<name>-shadow` ConfigMap the model servers read: `mirror`, or no
    shadow traffic (percent 0) for None."""

    mirror: Mirror | None


@dataclass(frozen=True)
class RunRetrainingJob:
    """Create retraining Job `name` (run `number`) from spec.retraining.job with `env`
    added to its containers; one that exists already is left as it is."""

    name: str
    number: int
    env: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DeleteRetrainingJob:
    """Delete a finished retraining Job (and its pod); absent is fine."""

    name: str


@dataclass(frozen=True)
class EnsureAutoscaler:
    """Make the HPA `<name>` what spec.autoscaling says (create it, or replace its
    spec), its target this ModelDeployment's scale subresource."""


@dataclass(frozen=True)
class DeleteAutoscaler:
    """Delete the operator's HPA `<name>` (spec.autoscaling was removed); absent is fine."""


Action = (
    EnsureRevision
    | ScaleRevision
    | DeleteRevision
    | RouteService
    | SetHeaderRoutes
    | SetMirror
    | RunRetrainingJob
    | DeleteRetrainingJob
    | EnsureAutoscaler
    | DeleteAutoscaler
)
