"""Retraining: when to start a Job that retrains the champion, and what its end means.

The drift watch says the serving model rots; this module closes the loop. On a
trigger (the drift watch firing, a cron tick, a `retrain` command) it starts one
Job per ModelDeployment, never two: a trigger that comes while one runs, or
while drift is cooling down after a run, is recorded in status.retraining.deferred,
not stacked. The Job (`modelrollout retrain` in the reference image) trains a
candidate, compares it with the champion on the same fresh held-out labelled
rows, and registers it behind the alias this ModelDeployment tracks only if it
is not worse; the alias moving is what starts the rollout, so spec stays the
user's and the candidate is still judged live, like any version. Here the Job's
end becomes status, an Event and a notification: accepted (with both sides'
metrics), rejected (with them, and why), or failed (with what the Job said).

Pure like the rest of the core: time comes in as `ctx.now`, the Jobs as observed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from croniter import croniter

from modelrollout.api import RetrainingRequest, RetrainingRun, RetrainingStatus
from modelrollout.api import names as n
from modelrollout.api.reasons import Reason
from modelrollout.api.status import DeferredTrigger
from modelrollout.rollout.actions import DeleteRetrainingJob, RunRetrainingJob
from modelrollout.rollout.clock import stamp
from modelrollout.rollout.outcome import Event

if TYPE_CHECKING:
    from modelrollout.api import Command, ModelDeploymentSpec, ModelDeploymentStatus, Retraining
    from modelrollout.api.status import RetrainingOutcome, RetrainingTrigger
    from modelrollout.rollout.actions import Action
    from modelrollout.rollout.context import Context
    from modelrollout.rollout.observed import RetrainingJobObservation

# `modelrollout retrain`'s exit code for a candidate that was worse (not a failure).
REJECTED_EXIT_CODE = 3
# How often a running Job is looked at: Jobs take minutes, and nothing wakes the
# operator when one ends.
JOB_POLL_SECONDS = 10.0
# A Job this plan's predecessor asked for may not be visible yet; past this it is gone.
JOB_APPEAR_SECONDS = 60.0
# Where the Job's container writes its outcome (the pod's termination message).
OUTCOME_PATH = "/dev/termination-log"

# The environment of the Job's containers: what `modelrollout retrain` reads.
ENV_PREFIX = "MODELROLLOUT_RETRAIN_"


@dataclass(frozen=True)
class Step:
    status: ModelDeploymentStatus
    events: tuple[Event, ...] = ()
    actions: tuple[Action, ...] = ()
    requeue_after: float | None = None


def step(ctx: Context, status: ModelDeploymentStatus) -> Step:
    """The retraining part of a plan, after the rollout stages have settled."""
    spec = ctx.spec.retraining
    if spec is None:
        return Step(status)
    current = status.retraining or RetrainingStatus()
    events: list[Event] = []
    actions: list[Action] = []
    jobs = {job.number: job for job in ctx.observed.retraining_jobs}

    if current.active is None:
        orphan = _orphan(current, jobs)
        if orphan is not None:
            current = _adopt(ctx, current, orphan)
    if current.active is not None:
        job = jobs.get(current.active.number)
        current, ended = _follow(ctx, spec, status, current, job, actions)
        events.extend(ended)

    current, started = _triggers(ctx, spec, status, current, actions)
    events.extend(started)
    actions.extend(_expired(spec, current, ctx.observed.retraining_jobs))

    new_status = (
        status
        if current == status.retraining
        else status.model_copy(update={"retraining": current})
    )
    return Step(new_status, tuple(events), tuple(actions), _requeue(ctx, spec, current))


def retrains_on(spec: Retraining | None, metric: str) -> bool:
    """Whether drift of analysis metric `metric` starts a retraining run."""
    if spec is None or not spec.triggers.on_drift:
        return False
    return not spec.triggers.drift_metrics or metric in spec.triggers.drift_metrics


def champion_version(status: ModelDeploymentStatus) -> str | None:
    """The registry version of the revision serving all traffic, if it came from one."""
    entry = next((e for e in status.history if e.revision == status.stable_revision), None)
    return entry.registry.version if entry is not None and entry.registry is not None else None


def retrain_rejection(spec: ModelDeploymentSpec, status: ModelDeploymentStatus) -> str | None:
    """Why a `retrain` command cannot start a run now; None when it can."""
    if spec.retraining is None:
        return "spec.retraining is not set: there is no Job to run"
    current = status.retraining
    if current is not None and current.active is not None:
        active = current.active
        return f"retraining run {active.number} (Job {active.job}) is still running"
    if current is not None and current.requested is not None:
        return "a `retrain` is already waiting to start"
    if status.rollout_in_flight:
        return "a rollout is in progress; retrain once it has ended"
    if champion_version(status) is None:
        return "nothing serves from the registry yet: no champion to retrain"
    return None


def requested(status: ModelDeploymentStatus, command: Command, now: datetime) -> dict[str, object]:
    """The status update that records an accepted `retrain` command."""
    current = status.retraining or RetrainingStatus()
    request = RetrainingRequest(id=command.id, dataset=command.dataset, at=now)
    return {"retraining": current.model_copy(update={"requested": request})}


# Following the run in flight.


def _orphan(
    current: RetrainingStatus, jobs: dict[int, RetrainingJobObservation]
) -> RetrainingJobObservation | None:
    """A Job newer than every run status knows: created, and then the status write
    that recorded it was lost. It is followed, not run again."""
    newer = [job for number, job in jobs.items() if number > current.runs]
    return max(newer, key=lambda job: job.number) if newer else None


def _adopt(
    ctx: Context, current: RetrainingStatus, job: RetrainingJobObservation
) -> RetrainingStatus:
    run = RetrainingRun(
        number=job.number,
        job=job.name,
        trigger="Manual",
        cause="a Job found running that status did not record (its status write was lost)",
        started_at=ctx.now,
        champion_version="unknown",
    )
    return current.model_copy(update={"active": run, "runs": job.number})


def _follow(
    ctx: Context,
    spec: Retraining,
    status: ModelDeploymentStatus,
    current: RetrainingStatus,
    job: RetrainingJobObservation | None,
    actions: list[Action],
) -> tuple[RetrainingStatus, tuple[Event, ...]]:
    active = current.active
    assert active is not None
    if job is None:
        if ctx.now - active.started_at < timedelta(seconds=JOB_APPEAR_SECONDS):
            actions.append(_run_job(ctx, spec, status, active))  # exists already is fine
            return current, ()
        return _finished(
            ctx, current, "Failed", f"its Job {active.job} is gone (deleted before it finished)"
        )
    if job.state == "Running":
        return current, ()
    outcome, message, details = judge(job)
    return _finished(ctx, current, outcome, message, details, job.finished_at)


def judge(job: RetrainingJobObservation) -> tuple[RetrainingOutcome, str, dict[str, Any]]:
    """How a finished Job ended, from its exit code and the outcome JSON it wrote."""
    details = _outcome_json(job.message)
    reason = str(details.get("reason") or "")
    if job.state == "Succeeded":
        return "Accepted", reason or "the candidate was registered", details
    if job.exit_code == REJECTED_EXIT_CODE and details:
        return "Rejected", reason or "the candidate was worse than the champion", details
    error = details.get("error")
    if isinstance(error, dict):  # the full outcome document's {"kind", "message"}
        error = error.get("message")
    said = str(error or "") or (job.message.strip() if not details else "")
    parts = [p for p in (job.reason, job.detail, _exit(job.exit_code), said[:400]) if p]
    return "Failed", ": ".join(parts) or "the Job failed without saying why", details


def _exit(code: int | None) -> str:
    return "" if code is None else f"the training container exited with code {code}"


def _outcome_json(message: str) -> dict[str, Any]:
    try:
        parsed = json.loads(message) if message.strip().startswith("{") else None
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _metrics(value: object) -> dict[str, float]:
    if not isinstance(value, dict):
        return {}
    return {
        str(k): float(v)
        for k, v in value.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and v == v  # drops NaN
    }


def _finished(
    ctx: Context,
    current: RetrainingStatus,
    outcome: RetrainingOutcome,
    message: str,
    details: dict[str, Any] | None = None,
    finished_at: datetime | None = None,
) -> tuple[RetrainingStatus, tuple[Event, ...]]:
    active = current.active
    assert active is not None
    details = details or {}
    registered = details.get("registered")
    candidate_version = (
        str(registered["version"])
        if isinstance(registered, dict) and registered.get("version") is not None
        else None
    )
    metric = details.get("metric")
    run = active.model_copy(
        update={
            "finished_at": finished_at or ctx.now,
            "outcome": outcome,
            "message": message,
            "candidate_version": candidate_version,
            "metric": str(metric) if isinstance(metric, str) else None,
            "candidate": _metrics(details.get("candidate")),
            "champion": _metrics(details.get("champion")),
        }
    )
    done = current.model_copy(update={"active": None, "last": run})
    return done, (_outcome_event(run),)


def _outcome_event(run: RetrainingRun) -> Event:
    where = f"retraining run {run.number} (Job {run.job})"
    compared = _comparison(run)
    match run.outcome:
        case "Accepted":
            version = f" as version {run.candidate_version}" if run.candidate_version else ""
            return Event(
                Reason.RETRAINING_ACCEPTED,
                f"{where}: candidate registered{version}{compared}; it rolls out through the "
                f"tracked alias and is compared live with the champion. {run.message}",
            )
        case "Rejected":
            return Event(
                Reason.RETRAINING_REJECTED,
                f"{where}: candidate rejected{compared}: {run.message}; nothing was registered",
                "Warning",
            )
    return Event(
        Reason.RETRAINING_FAILED,
        f"{where} failed: {run.message}; what serves is unchanged",
        "Warning",
    )


def _comparison(run: RetrainingRun) -> str:
    metric = run.metric
    if metric is None or metric not in run.candidate or metric not in run.champion:
        return ""
    return (
        f" ({metric} {run.candidate[metric]:.4g} vs the champion's "
        f"{run.champion[metric]:.4g} on the same held-out rows)"
    )


# Triggers.


@dataclass(frozen=True)
class _Trigger:
    kind: RetrainingTrigger
    cause: str
    # When it happened: drift's onset, the cron tick, the command's arrival.
    at: datetime
    dataset: str | None = None


def _triggers(
    ctx: Context,
    spec: Retraining,
    status: ModelDeploymentStatus,
    current: RetrainingStatus,
    actions: list[Action],
) -> tuple[RetrainingStatus, tuple[Event, ...]]:
    due: list[_Trigger] = []
    if current.requested is not None:
        request = current.requested
        cause = f"`retrain` command {request.id}" + (
            f" (pinned to the dataset of version {request.dataset})" if request.dataset else ""
        )
        due.append(_Trigger("Manual", cause, request.at, request.dataset))
    drift = status.drift
    running = current.active
    if (
        drift is not None
        and retrains_on(spec, drift.metric)
        and drift.revision == status.stable_revision
        # The drift the running Job was started for is not a new trigger.
        and not (running and running.trigger == "Drift" and running.triggered_at == drift.since)
    ):
        due.append(_Trigger("Drift", drift.message, drift.since))
    current, tick = _schedule_tick(ctx, spec, current)
    if tick is not None:
        due.append(_Trigger("Schedule", f"schedule {spec.triggers.schedule!r}", tick))
    if not due:
        return current, ()

    trigger, *others = due
    blocked = _blocked(ctx, spec, status, current, trigger)
    if blocked is None:
        current, events = _start(ctx, spec, status, current, trigger, actions)
        for other in others[:1]:  # what came at the same time waits behind it
            assert current.active is not None
            starting = f"run {current.active.number} (Job {current.active.job}) is starting"
            current, deferred = _defer(current, other, starting)
            events += deferred
        return current, events
    if trigger.kind == "Manual":
        # Accepted when it could run; the world moved on since: dropped, and said so.
        message = f"`retrain` not started: {blocked}"
        dropped = current.model_copy(update={"requested": None})
        return dropped, (Event(Reason.RETRAINING_DEFERRED, message, "Warning"),)
    return _defer(current, trigger, blocked)


def _schedule_tick(
    ctx: Context, spec: Retraining, current: RetrainingStatus
) -> tuple[RetrainingStatus, datetime | None]:
    """The latest cron tick since the schedule was last looked at, if any; the
    first look starts the count (no run for ticks before the schedule was seen)."""
    schedule = spec.triggers.schedule
    if schedule is None:
        return current, None
    checked = current.schedule_checked_at
    seen = current.model_copy(update={"schedule_checked_at": ctx.now})
    if checked is None:
        return seen, None
    latest: datetime = croniter(schedule, ctx.now).get_prev(datetime)
    return seen, (latest if latest > checked else None)


def _blocked(
    ctx: Context,
    spec: Retraining,
    status: ModelDeploymentStatus,
    current: RetrainingStatus,
    trigger: _Trigger,
) -> str | None:
    if current.active is not None:
        return f"run {current.active.number} (Job {current.active.job}) is still running"
    if status.rollout_in_flight:
        return "a rollout is in progress"
    if champion_version(status) is None:
        return "nothing serves from the registry yet"
    last = current.last
    if trigger.kind == "Drift" and last is not None and last.finished_at is not None:
        ends = last.finished_at + timedelta(seconds=spec.cool_down_seconds)
        if ctx.now < ends:
            return f"cooling down after run {last.number} until {stamp(ends)}"
    return None


def _defer(
    current: RetrainingStatus, trigger: _Trigger, blocked: str
) -> tuple[RetrainingStatus, tuple[Event, ...]]:
    known = current.deferred
    if known is not None and known.trigger == trigger.kind and known.at == trigger.at:
        return current, ()  # the same occurrence, seen again: recorded once
    deferred = DeferredTrigger(trigger=trigger.kind, cause=trigger.cause, at=trigger.at)
    updated = current.model_copy(
        update={"deferred": deferred, "deferred_count": current.deferred_count + 1}
    )
    message = f"{trigger.kind.lower()} trigger recorded, no run started: {blocked}"
    return updated, (Event(Reason.RETRAINING_DEFERRED, message),)


def _start(
    ctx: Context,
    spec: Retraining,
    status: ModelDeploymentStatus,
    current: RetrainingStatus,
    trigger: _Trigger,
    actions: list[Action],
) -> tuple[RetrainingStatus, tuple[Event, ...]]:
    number = current.runs + 1
    champion = champion_version(status)
    assert champion is not None
    run = RetrainingRun(
        number=number,
        job=n.retraining_job_name(ctx.observed.name, number),
        trigger=trigger.kind,
        cause=trigger.cause,
        triggered_at=trigger.at,
        started_at=ctx.now,
        champion_version=champion,
        dataset=trigger.dataset,
    )
    actions.append(_run_job(ctx, spec, status, run))
    started = current.model_copy(
        update={"active": run, "runs": number, "requested": None, "deferred": None}
    )
    message = (
        f"retraining run {number} (Job {run.job}) started by {trigger.kind.lower()}: "
        f"{trigger.cause}; champion version {champion}"
    )
    return started, (Event(Reason.RETRAINING_STARTED, message),)


def _run_job(
    ctx: Context, spec: Retraining, status: ModelDeploymentStatus, run: RetrainingRun
) -> RunRetrainingJob:
    return RunRetrainingJob(run.job, run.number, job_env(ctx, spec, status, run))


def job_env(
    ctx: Context, spec: Retraining, status: ModelDeploymentStatus, run: RetrainingRun
) -> tuple[tuple[str, str], ...]:
    """What the training container is told: the champion, the registry, the rule,
    and since when the champion has served (its fresh labelled data starts there)."""
    model = ctx.spec.model
    registry = model.registry
    assert registry is not None, "retraining without spec.model.registry"
    env = {
        "MODEL": model.name,
        "REGISTERED_NAME": registry.name,
        "CHAMPION": f"models:/{registry.name}/{run.champion_version}",
        "ALIAS": ctx.observed.registry_alias or "",
        "MARGIN": repr(spec.margin),
        "MIN_ROWS": str(spec.min_rows),
        "ORIGINAL": "champion" if spec.include_original_data else "none",
        "TRIGGER": run.trigger,
        "RUN": str(run.number),
        "OUTCOME_PATH": OUTCOME_PATH,
    }
    if spec.metric is not None:
        env["METRIC"] = spec.metric
    if run.dataset is not None:
        env["DATASET"] = f"models:/{registry.name}/{run.dataset}"
    serving = next((e for e in status.history if e.revision == status.stable_revision), None)
    if serving is not None:
        env["SINCE"] = stamp(serving.promoted_at)
    pairs = [(ENV_PREFIX + key, value) for key, value in env.items()]
    if registry.uri:
        pairs.append((n.ENV_MLFLOW_TRACKING_URI, registry.uri))
    return tuple(pairs)


def _expired(
    spec: Retraining, current: RetrainingStatus, jobs: tuple[RetrainingJobObservation, ...]
) -> list[Action]:
    """Finished Jobs beyond spec.retraining.historyLimit, oldest first."""
    active = current.active.number if current.active is not None else None
    finished = sorted(
        (job for job in jobs if job.state != "Running" and job.number != active),
        key=lambda job: job.number,
        reverse=True,
    )
    return [DeleteRetrainingJob(job.name) for job in finished[spec.history_limit :]]


def _requeue(ctx: Context, spec: Retraining, current: RetrainingStatus) -> float | None:
    waits: list[float] = []
    if current.active is not None:
        waits.append(JOB_POLL_SECONDS)
    if spec.triggers.schedule is not None:
        following: datetime = croniter(spec.triggers.schedule, ctx.now).get_next(datetime)
        waits.append(max((following - ctx.now).total_seconds(), 1.0))
    last = current.last
    if current.deferred is not None and last is not None and last.finished_at is not None:
        ends = last.finished_at + timedelta(seconds=spec.cool_down_seconds)
        if ends > ctx.now:
            waits.append((ends - ctx.now).total_seconds())
    return min(waits) if waits else None
