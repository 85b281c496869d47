"""What canary and blue/green share: acting on an analysis failure, and timers."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import TYPE_CHECKING

from modelrollout.rollout import transitions
from modelrollout.rollout.outcome import Reason

if TYPE_CHECKING:
    from datetime import datetime

    from modelrollout.api import ModelDeploymentStatus
    from modelrollout.rollout.analysis import Judgement
    from modelrollout.rollout.context import Context
    from modelrollout.rollout.outcome import Transition


def on_failure(
    ctx: Context, status: ModelDeploymentStatus, judgement: Judgement
) -> Transition | Reason:
    """Roll back when rollback.automatic, else the Degraded reason to hold with."""
    if ctx.spec.rollback.automatic:
        return transitions.roll_back(
            ctx, status, reason="RolledBack", message=judgement.message, judgement=judgement
        )
    return Reason(
        judgement.reason,
        f"{judgement.message}; rollback.automatic is off: `abort` to roll back "
        "or `promote` to go on",
    )


def deadline(started: datetime | None, seconds: float, now: datetime) -> datetime:
    return (started or now) + timedelta(seconds=seconds)


def earliest(*delays: float | None) -> float | None:
    pending = [delay for delay in delays if delay is not None]
    return min(pending) if pending else None


def stamp(moment: datetime) -> str:
    """RFC 3339 in UTC to the second, for messages that must not change between plans."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
