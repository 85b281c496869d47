"""status.history: revisions that served all traffic, newest first.

Entries carry a `number` that only grows (like a Deployment's revision
annotation), so `undo --to-revision N` names the same revision over time. A
revision that serves again gets a new number and loses its old entry. The list
holds the serving revision plus `revisionHistoryLimit` earlier ones, and their
Deployments are kept (scaled to 0) so `undo` needs nothing rebuilt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelrollout.api import HistoryEntry, RegistryVersion

if TYPE_CHECKING:
    from datetime import datetime

    from modelrollout.api.status import RolloutSource


def record_promotion(
    history: tuple[HistoryEntry, ...],
    *,
    revision: str,
    version: str,
    at: datetime,
    source: RolloutSource,
    limit: int,
    registry: RegistryVersion | None = None,
) -> tuple[HistoryEntry, ...]:
    """`registry`: the registry version the revision serves, when the spec resolved
    it; a revision served again by `undo` keeps the one its old entry recorded."""
    number = max((entry.number for entry in history), default=0) + 1
    earlier = tuple(entry for entry in history if entry.revision != revision)
    if registry is None:
        registry = next((e.registry for e in history if e.revision == revision), None)
    entry = HistoryEntry(
        number=number,
        revision=revision,
        version=version,
        promoted_at=at,
        source=source,
        registry=registry,
    )
    return (entry, *earlier)[: limit + 1]


def find(history: tuple[HistoryEntry, ...], number: int) -> HistoryEntry | None:
    return next((entry for entry in history if entry.number == number), None)


def previous(history: tuple[HistoryEntry, ...]) -> HistoryEntry | None:
    """The entry before the serving one: what a plain `undo` goes back to."""
    return history[1] if len(history) > 1 else None
