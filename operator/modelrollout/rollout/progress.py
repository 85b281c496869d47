"""The progress deadline: how long a revision's pods may take to become available.

spec.progressDeadlineSeconds bounds every wait for the pods of the revision being
rolled out (the canary, the blue/green preview and green) and of the first
revision: while it has fewer available pods than the current step asks for, the
wait runs (status.readinessWait), from the step that scaled it up or from the
moment its pods were first seen short (a pod that crashes during a pause step
starts a wait too). Time paused by `pause` does not count (`resume` moves
`since` on). Pods that become available end the wait, however close to the
deadline.

At the deadline the rollout stops. This module only says so (Exceeded, with a
message naming what the pods report: see PodCause.describe); gating.py decides
what follows (roll back, or hold Degraded until `abort`/`promote`), steady.py
does for the first revision (Degraded: nothing to roll back to).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from modelrollout.api import ReadinessWait, format_seconds
from modelrollout.rollout.clock import stamp
from modelrollout.rollout.outcome import Transition
from modelrollout.rollout.stages import frozen_timer

if TYPE_CHECKING:
    from datetime import datetime

    from modelrollout.api import ModelDeploymentSpec, ModelDeploymentStatus
    from modelrollout.rollout.context import Context


@dataclass(frozen=True)
class Exceeded:
    """The deadline passed with pods still missing; `message` says what they report."""

    message: str


def deadline(spec: ModelDeploymentSpec, wait: ReadinessWait) -> datetime:
    return wait.since + timedelta(seconds=spec.progress_deadline_seconds)


def with_deadline(spec: ModelDeploymentSpec, status: ModelDeploymentStatus) -> ReadinessWait | None:
    """status.readinessWait with the deadline it runs against (frozen while paused)."""
    wait = status.readiness_wait
    if wait is None:
        return None
    timer = frozen_timer(deadline(spec, wait), status.paused_at)
    return wait if wait.deadline == timer else wait.model_copy(update={"deadline": timer})


def current(status: ModelDeploymentStatus, revision: str | None) -> ReadinessWait | None:
    """The wait recorded for `revision`, if any (one for another revision is stale)."""
    wait = status.readiness_wait
    return wait if wait is not None and wait.revision == revision else None


def watch(
    ctx: Context, status: ModelDeploymentStatus, revision: str, wanted: int
) -> Transition | Exceeded | None:
    """Start, end or judge the wait for `wanted` available pods of `revision`.

    A Transition records a wait's start or end; Exceeded at the deadline (and,
    once latched in status, on every plan after); None while the wait runs, or
    when nothing is missing. While paused by the user only a latched verdict
    stands: the clock is frozen.
    """
    wait = current(status, revision)
    if wait is not None and wait.exceeded_at is not None:
        return Exceeded(wait.message)
    if status.paused_at is not None:
        return None
    available = ctx.observed.available(revision)
    if available >= wanted:
        if status.readiness_wait is not None:
            return Transition(status.model_copy(update={"readiness_wait": None}))
        return None
    if wait is None:
        started = ReadinessWait(revision=revision, since=ctx.now)
        return Transition(status.model_copy(update={"readiness_wait": started}))
    if ctx.now < deadline(ctx.spec, wait):
        return None
    return Exceeded(exceeded_message(ctx, revision, wanted))


def latch(ctx: Context, status: ModelDeploymentStatus, exceeded: Exceeded) -> Transition | None:
    """Record the verdict so it holds after the pods recover; None once recorded."""
    wait = status.readiness_wait
    assert wait is not None, "a deadline exceeded without a wait"
    if wait.exceeded_at is not None:
        return None
    latched = wait.model_copy(update={"exceeded_at": ctx.now, "message": exceeded.message})
    return Transition(status.model_copy(update={"readiness_wait": latched}))


def exceeded_message(ctx: Context, revision: str, wanted: int) -> str:
    """ "progress deadline (10m) exceeded with 0/2 pods available: ImagePullBackOff: ..." """
    available = ctx.observed.available(revision)
    limit = format_seconds(ctx.spec.progress_deadline_seconds)
    return (
        f"progress deadline ({limit}) exceeded with {available}/{wanted} pods available: "
        f"{cause(ctx, revision)}"
    )


def cause(ctx: Context, revision: str) -> str:
    """What the revision's pods say about why they are not available."""
    found = ctx.observed.revision(revision)
    pods = found.pods if found else None
    if pods is not None and pods.cause is not None:
        return pods.cause.describe()
    if pods is not None and pods.ready + pods.not_ready == 0:
        return "no pods exist yet"
    return "the pods report no cause"


def note(ctx: Context, status: ModelDeploymentStatus, revision: str | None) -> str:
    """For status messages while a wait runs: "; not ready: <cause>; progress
    deadline <time>"; empty otherwise (and while paused: the CLI shows the clock)."""
    wait = current(status, revision)
    if wait is None or wait.exceeded_at is not None or status.paused_at is not None:
        return ""
    assert revision is not None
    found = ctx.observed.revision(revision)
    pods = found.pods if found else None
    why = f"; not ready: {pods.cause.describe()}" if pods and pods.cause else ""
    return f"{why}; progress deadline {stamp(deadline(ctx.spec, wait))}"


def requeue(ctx: Context, status: ModelDeploymentStatus, revision: str | None) -> float | None:
    """Seconds until the running wait's deadline, so the plan is made again then
    (a pod stuck in ImagePullBackOff changes nothing the operator watches)."""
    wait = current(status, revision)
    if wait is None or wait.exceeded_at is not None or status.paused_at is not None:
        return None
    left = (deadline(ctx.spec, wait) - ctx.now).total_seconds()
    return left if left > 0 else None  # past it: acted on already
