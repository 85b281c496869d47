"""Which versions of a registered model a registry prune may delete (README:
"Pruning the registry").

Two steps, both pure. `protected_versions` reads what the ModelDeployments that
track the model say they need: the versions serving (stable) and being rolled
out (canary), every version in status.history (what `revisionHistoryLimit` keeps
for `undo --to-revision`), what the spec pins or resolves to, the champion, and
what a retraining run trains from. `decide` then keeps those and anything behind
an alias whatever the policy; the policy (the newest K, and optionally those
younger than a duration) only chooses among the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from datetime import datetime

    from modelrollout.api import ModelDeploymentStatus

READY: Final = "READY"


@dataclass(frozen=True)
class StoredVersion:
    """One version of the registered model, as the registry lists it."""

    version: str
    created_at: datetime
    aliases: tuple[str, ...] = ()
    status: str = READY


@dataclass(frozen=True)
class RetentionPolicy:
    """Keep the newest `keep` versions, and those younger than `keep_younger_than`."""

    keep: int
    keep_younger_than: timedelta | None = None

    def __post_init__(self) -> None:
        if self.keep < 0:
            raise ValueError(f"keep must be 0 or more, not {self.keep}")
        if self.keep_younger_than is not None and self.keep_younger_than < timedelta(0):
            raise ValueError("keep_younger_than must not be negative")


@dataclass(frozen=True)
class Tracker:
    """A ModelDeployment as the prune sees it: its status, and what its spec names."""

    name: str  # namespace/name, for the reasons
    status: ModelDeploymentStatus
    registry_name: str | None = None  # spec.model.registry.name
    pinned_version: str | None = None  # spec.model.registry.version


@dataclass(frozen=True)
class Retention:
    """The decision on one version: deleted, or kept and why."""

    version: str
    created_at: datetime
    delete: bool
    protected: bool
    reasons: tuple[str, ...]


def protected_versions(model: str, trackers: Iterable[Tracker]) -> dict[str, tuple[str, ...]]:
    """Version -> why it must stay, from every ModelDeployment's spec and status.

    A version one of them may still need is named here; when in doubt (a status
    written by another operator, a spec that moved to another model) it is named
    too: keeping a version too many costs storage, deleting one breaks an undo.
    """
    reasons: dict[str, list[str]] = {}

    def need(version: str | None, why: str) -> None:
        if version:
            found = reasons.setdefault(version, [])
            if why not in found:
                found.append(why)

    for tracker in trackers:
        status, who = tracker.status, tracker.name
        tracks = tracker.registry_name == model
        for index, entry in enumerate(status.history):
            if entry.registry is not None:
                if entry.registry.name != model:
                    continue
                version = entry.registry.version
            elif tracks:
                version = entry.version  # a registry spec's version is the registry's
            else:
                continue
            if index == 0 and entry.revision == status.stable_revision:
                need(version, f"serves {who} (stable, history #{entry.number})")
            else:
                need(version, f"history #{entry.number} of {who} (undo --to-revision)")
        registry = status.registry
        if registry is not None and registry.resolved.name == model:
            need(registry.resolved.version, f"the spec of {who} resolves to it")
            if registry.champion_version:
                need(registry.champion_version, f"champion of {who}")
        if not tracks:
            continue
        need(tracker.pinned_version, f"pinned by the spec of {who}")
        if status.stable_version not in reasons:  # usually said by history already
            need(status.stable_version, f"serves {who} (stable)")
        need(status.canary_version, f"being rolled out in {who} (canary)")
        retraining = status.retraining
        if retraining is not None:
            if retraining.active is not None:
                run = retraining.active
                need(run.champion_version, f"champion of retraining run {run.number} of {who}")
                need(run.dataset, f"dataset of retraining run {run.number} of {who}")
            if retraining.requested is not None:
                need(retraining.requested.dataset, f"dataset of a retrain requested in {who}")
    return {version: tuple(why) for version, why in reasons.items()}


def decide(
    versions: Sequence[StoredVersion],
    protected: Mapping[str, Sequence[str]],
    policy: RetentionPolicy,
    now: datetime,
) -> tuple[Retention, ...]:
    """Each version's fate, newest first. A protected version, one behind an alias
    or one not yet READY is never deleted, whatever the policy."""
    ordered = sorted(versions, key=_newest_first)
    decisions = []
    for rank, stored in enumerate(ordered):
        guarded = [*protected.get(stored.version, ())]
        guarded += [f"alias {alias}" for alias in stored.aliases]
        if stored.status not in (READY, "FAILED_REGISTRATION"):
            guarded.append(f"being registered ({stored.status})")
        kept = list(guarded)
        if rank < policy.keep:
            kept.append(f"among the newest {policy.keep}")
        age = now - stored.created_at
        if policy.keep_younger_than is not None and age < policy.keep_younger_than:
            kept.append(f"younger than {_days(policy.keep_younger_than)}")
        delete = not kept
        decisions.append(
            Retention(
                version=stored.version,
                created_at=stored.created_at,
                delete=delete,
                protected=bool(guarded),
                reasons=tuple(kept) if kept else (_why_deleted(policy),),
            )
        )
    return tuple(decisions)


def _newest_first(stored: StoredVersion) -> tuple[int, float]:
    # MLflow numbers versions 1, 2, 3...: the number is the order of creation.
    number = int(stored.version) if stored.version.isdigit() else -1
    return (-number, -stored.created_at.timestamp())


def _why_deleted(policy: RetentionPolicy) -> str:
    why = f"older than the newest {policy.keep}"
    if policy.keep_younger_than is not None:
        why += f" and {_days(policy.keep_younger_than)} or older"
    return why + ", nothing needs it"


def _days(duration: timedelta) -> str:
    seconds = duration.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
