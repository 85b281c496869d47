"""What the I/O layer saw of the world, handed to the decision core as plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from modelrollout.api import Verdict

ServiceRole = Literal["main", "canary", "preview"]
SERVICE_ROLES: tuple[ServiceRole, ...] = ("main", "canary", "preview")


@dataclass(frozen=True)
class RevisionObservation:
    """One `<md-name>-<revision>` Deployment that exists.

    `replicas` is the Deployment's spec.replicas (what was asked), the others
    come from its status.
    """

    revision: str
    version: str
    replicas: int
    ready_replicas: int = 0
    available_replicas: int = 0
    created_at: datetime | None = None


@dataclass(frozen=True)
class MetricVerdict:
    """The latest measurement of one analysis check (a metric, or the webhook).

    `measured_at` identifies the measurement: the core counts each one once.
    `revision` is the revision measured: the core counts a measurement only for
    the revision it judges (the rollout's during a rollout, the stable one while
    serving), so a measurement of one is never taken for the other. None: the
    revision being judged.
    """

    verdict: Verdict
    measured_at: datetime
    value: float | None = None
    threshold: str | None = None
    message: str = ""
    revision: str | None = None


@dataclass(frozen=True)
class Observed:
    """The world as seen just before planning.

    `revisions` must list every Deployment of this ModelDeployment: the core
    deletes what it does not know and treats a missing stable Deployment as gone.
    `routes` maps each Service that exists to the revision its selector pins
    (None: every revision of this ModelDeployment); a role left out is a Service
    to create, so an executor that does not read Services back may pass {} and
    receive a RouteService for each role on every plan.
    `command` is the raw `modelrollout.io/command` annotation, if any.
    `verdicts` maps a check name (metric name, or `WEBHOOK_CHECK`) to its latest
    measurement; empty while nothing was measured.
    """

    generation: int
    revisions: tuple[RevisionObservation, ...] = ()
    routes: Mapping[ServiceRole, str | None] = field(default_factory=dict)
    command: str | None = None
    verdicts: Mapping[str, MetricVerdict] = field(default_factory=dict)

    def revision(self, revision: str | None) -> RevisionObservation | None:
        return next((r for r in self.revisions if r.revision == revision), None)

    def available(self, revision: str | None) -> int:
        found = self.revision(revision)
        return found.available_replicas if found else 0

    def ready(self, revision: str | None) -> int:
        found = self.revision(revision)
        return found.ready_replicas if found else 0
