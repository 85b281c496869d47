"""Manual commands: whether one applies now, and what it does to status.

`command_rejection` needs only spec and status, so the CLI can call it before
writing the annotation and tell the user at once; the operator calls it again
when the command arrives (the phase may have moved on meanwhile) and records
the outcome in status.lastCommand, which also makes each command id apply once.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from modelrollout.api import (
    BlueGreenStage,
    Hold,
    LastCommand,
    SpecError,
    command_id_of,
    parse_command,
    spec_revision,
)
from modelrollout.api.reasons import Reason, hold_reason
from modelrollout.rollout import history, retraining, stages, transitions
from modelrollout.rollout.outcome import Event

if TYPE_CHECKING:
    from modelrollout.api import Command, HistoryEntry, ModelDeploymentSpec, ModelDeploymentStatus
    from modelrollout.rollout.context import Context


def command_rejection(
    spec: ModelDeploymentSpec, status: ModelDeploymentStatus, command: Command
) -> str | None:
    """Why `command` does not apply in the current state; None when it does."""
    in_flight = status.rollout_in_flight
    undoing = status.rollout_source == "Undo"
    idle = f"no rollout in progress (phase {status.phase or 'unknown'})"
    match command.action:
        case "promote":
            if not in_flight:
                if status.hold is not None and Reason(status.hold.reason) != Reason.UNDONE:
                    return (
                        f"nothing to promote: revision {status.hold.revision} is held back "
                        f"({status.hold.reason}); use `retry` to roll it out again"
                    )
                return f"nothing to promote: {idle}"
            if undoing:
                return "nothing to promote: an undo already goes straight to its revision"
            if not command.full and _final_step(spec, status) and not _deadline_held(status):
                return "nothing to promote: the new revision is already taking all traffic"
        case "abort":
            if not in_flight:
                return f"nothing to abort: {idle}"
        case "pause":
            if not in_flight:
                return f"nothing to pause: {idle}"
            if status.paused_at is not None:
                return "already paused; use `resume`"
        case "resume":
            if status.paused_at is None:
                return (
                    "not paused by `pause`; a pause step or a held analysis is released "
                    "with `promote`"
                )
        case "retry":
            if in_flight:
                return "a rollout is in progress; `abort` it first"
            held = status.hold
            if held is None or held.revision != spec_revision(spec):
                return "nothing to retry: the spec's revision is not held back"
        case "undo":
            if in_flight:
                return "a rollout is in progress; `abort` it first"
            return _undo_rejection(status, command.to_revision)
        case "retrain":
            return retraining.retrain_rejection(spec, status)
    return None


def _deadline_held(status: ModelDeploymentStatus) -> bool:
    """Halted for a missed progress deadline: `promote` lifts it (and the wait starts over)."""
    wait = status.readiness_wait
    return wait is not None and wait.exceeded_at is not None


def _final_step(spec: ModelDeploymentSpec, status: ModelDeploymentStatus) -> bool:
    """Nothing left for `promote` to skip (a blue/green verification can be ended)."""
    step = status.current_step or 0
    if spec.strategy.canary is not None:
        return step >= len(spec.strategy.canary.steps)
    return stages.stage(status) in (BlueGreenStage.SCALING_UP, BlueGreenStage.VERIFIED)


def _undo_rejection(status: ModelDeploymentStatus, number: int | None) -> str | None:
    entry = (
        history.previous(status.history) if number is None else history.find(status.history, number)
    )
    if entry is None:
        if number is None:
            return "no earlier revision in history to go back to"
        known = ", ".join(str(e.number) for e in status.history) or "none"
        return f"revision {number} is not in history (history holds: {known})"
    if entry.revision == status.stable_revision:
        return f"revision {entry.number} ({entry.revision}) is already serving"
    return None


def handle(
    ctx: Context, status: ModelDeploymentStatus
) -> tuple[ModelDeploymentStatus, tuple[Event, ...]]:
    """Apply the pending command annotation once; a no-op for one already handled."""
    text = ctx.observed.command
    if not text:
        return status, ()
    try:
        command = parse_command(text)
    except SpecError as error:
        command_id = command_id_of(text) or _digest(text)
        if status.last_command is not None and status.last_command.id == command_id:
            return status, ()
        return _record(ctx, status, command_id, "unknown", str(error))
    if status.last_command is not None and status.last_command.id == command.id:
        return status, ()
    rejection = command_rejection(ctx.spec, status, command) or _unavailable(ctx, status, command)
    if rejection is not None:
        return _record(ctx, status, command.id, command.action, rejection)
    applied, events = _apply(ctx, status, command)
    recorded, record_events = _record(ctx, applied, command.id, command.action, None)
    return recorded, events + record_events


def _unavailable(ctx: Context, status: ModelDeploymentStatus, command: Command) -> str | None:
    """What only the observed world can refuse: an undo whose Deployment is gone."""
    if command.action != "undo":
        return None
    entry = _undo_entry(status, command)
    if entry is not None and ctx.observed.revision(entry.revision) is None:
        return f"the Deployment of revision {entry.number} ({entry.revision}) no longer exists"
    return None


def _undo_entry(status: ModelDeploymentStatus, command: Command) -> HistoryEntry | None:
    if command.to_revision is None:
        return history.previous(status.history)
    return history.find(status.history, command.to_revision)


def _apply(
    ctx: Context, status: ModelDeploymentStatus, command: Command
) -> tuple[ModelDeploymentStatus, tuple[Event, ...]]:
    now = ctx.now
    match command.action:
        case "promote":
            return status.model_copy(update=_promoted(ctx, status, full=command.full)), ()
        case "abort":
            transition = transitions.roll_back(
                ctx, status, reason=Reason.ABORTED, message="aborted by `abort`"
            )
            return transition.status, transition.events
        case "pause":
            return status.model_copy(update={"paused_at": now}), ()
        case "resume":
            paused_at = status.paused_at
            started = status.step_started_at
            # Timers freeze while paused: the step's clock, and the progress
            # deadline's, resume where they stopped.
            paused_for = now - paused_at if paused_at else None
            shifted = started + paused_for if started and paused_for else started
            wait = status.readiness_wait
            if wait is not None and paused_for and wait.exceeded_at is None:
                wait = wait.model_copy(update={"since": wait.since + paused_for})
            return status.model_copy(
                update={"paused_at": None, "step_started_at": shifted, "readiness_wait": wait}
            ), ()
        case "retry":
            return status.model_copy(update={"hold": None}), ()
        case "undo":
            return _undo(ctx, status, command), ()
        case "retrain":
            return status.model_copy(update=retraining.requested(status, command, now)), ()
    raise AssertionError(f"unhandled command action {command.action}")


def _promoted(ctx: Context, status: ModelDeploymentStatus, *, full: bool) -> dict[str, object]:
    step = status.current_step or 0
    position: dict[str, object]
    if ctx.spec.strategy.canary is not None:
        last = len(ctx.spec.strategy.canary.steps)
        position = {"current_step": last if full else min(step + 1, last)}
    elif stages.at_least(status, BlueGreenStage.VERIFYING):
        # Ends the verification after the switch.
        position = stages.enter(BlueGreenStage.VERIFIED)
    else:
        # Even with --full, the switch waits for the new revision at full size.
        position = stages.enter(BlueGreenStage.SCALING_UP)
    analysis = {
        # Counts restart from zero (promote overrides a failure or a hold), but the
        # last measurement stays known so it is not counted again.
        name: result.model_copy(
            update={
                "successes": 0,
                "failures": 0,
                "inconclusive": 0,
                "errors": 0,
                "no_data": 0,
                "consecutive_errors": 0,
                "verdict": None,
            }
        )
        for name, result in status.analysis.items()
    }
    return {
        **position,
        "step_started_at": ctx.now,
        "paused_at": None,
        "analysis": analysis,
        # A missed progress deadline is overridden too; a new wait starts if the
        # pods are still missing.
        "readiness_wait": None,
    }


def _undo(ctx: Context, status: ModelDeploymentStatus, command: Command) -> ModelDeploymentStatus:
    entry = _undo_entry(status, command)
    assert entry is not None, "undo applied without a target"
    final_step = (
        {"current_step": len(ctx.spec.strategy.canary.steps)}
        if ctx.spec.strategy.canary is not None
        else stages.enter(BlueGreenStage.SCALING_UP)
    )
    hold = (
        None
        if entry.revision == ctx.target
        else Hold(
            revision=ctx.target,
            reason=hold_reason(Reason.UNDONE),
            message=f"undo to revision {entry.number}",
            since=ctx.now,
        )
    )
    return status.model_copy(
        update={
            "canary_revision": entry.revision,
            "canary_version": entry.version,
            **final_step,
            "step_started_at": ctx.now,
            "rollout_started_at": ctx.now,
            "paused_at": None,
            "rollout_source": "Undo",
            "analysis": {},
            "hold": hold,
            "readiness_wait": None,
        }
    )


def _record(
    ctx: Context,
    status: ModelDeploymentStatus,
    command_id: str,
    action: str,
    rejection: str | None,
) -> tuple[ModelDeploymentStatus, tuple[Event, ...]]:
    result = "Rejected" if rejection else "Applied"
    message = rejection or f"{action} applied"
    last = LastCommand(id=command_id, action=action, result=result, message=message, at=ctx.now)
    event = Event(
        Reason.COMMAND_REJECTED if rejection else Reason.COMMAND_APPLIED,
        f"{action}: {message}",
        "Warning" if rejection else "Normal",
    )
    return status.model_copy(update={"last_command": last}), (event,)


def _digest(text: str) -> str:
    return "invalid-" + hashlib.sha256(text.encode()).hexdigest()[:12]
