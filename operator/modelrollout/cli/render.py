"""Text views of ModelDeployments for `status`, `list` and `history`. Pure:
objects in, lines out, so what users read is unit-tested.

Stages and timers are shown as the operator wrote them (status.stage,
status.stepTimer, status.readinessWait.deadline). A status written by an
operator before those fields is read through the decision core's own rules
(rollout.stages, rollout.progress), never a second copy of them here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from modelrollout.api import (
    BlueGreenStage,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    RegistryVersion,
    Timer,
    format_seconds,
)
from modelrollout.api import names as n
from modelrollout.cli.shadow_figures import OUTCOMES, ShadowFigures
from modelrollout.rollout import (
    PodsObservation,
    describe_step,
    known_stage,
    preview_replicas,
    shadow_phase,
    stamp,
    step_timer,
    with_deadline,
)

TERMINAL_PHASES = ("Healthy", "Degraded")


def step_lines(spec: ModelDeploymentSpec, status: ModelDeploymentStatus) -> list[str]:
    canary = spec.strategy.canary
    if canary is None:
        return []
    current = status.current_step if status.rollout_in_flight else None
    lines = []
    for index, step in enumerate(canary.steps):
        marker = "->" if index == current else "  "
        lines.append(f"  {marker} {index + 1}. {describe_step(step)}")
    return lines


def _pods(count: int) -> str:
    return f"{count} replica" + ("" if count == 1 else "s")


def _progress(revision: str, replicas: Mapping[str, tuple[int, int]]) -> str:
    ready, wanted = replicas.get(revision, (0, 0))
    return f" ({ready}/{wanted} ready)"


def bluegreen_lines(
    name: str,
    spec: ModelDeploymentSpec,
    status: ModelDeploymentStatus,
    replicas: Mapping[str, tuple[int, int]],
) -> list[str]:
    """The blue/green stages, the current one marked: while a rollout runs, and
    after the switch while the old revision waits for its scale-down.

    A stage number this plugin does not know (a newer operator's) is shown as the
    operator's reason rather than guessed at.
    """
    strategy = spec.strategy.blue_green
    if strategy is None:
        return []
    in_flight = status.rollout_in_flight
    green = status.canary_revision if in_flight else None
    blue = status.stable_revision
    pending = {p.revision: p.not_before for p in status.pending_scale_downs}
    # After the switch (old revision still up) the stages are about the one now serving.
    switched_to = blue if not in_flight and pending else None
    new = green or switched_to or "the new revision"
    old = blue or "the old revision"
    step = known_stage(status) if in_flight else None
    timer = (status.step_timer or step_timer(spec, status)) if in_flight else None

    preview = (
        f"preview: {_pods(preview_replicas(strategy, spec.replicas))} of {new} "
        f"behind {n.preview_service_name(name)}"
    )
    if green and step == BlueGreenStage.PREVIEW_STARTING:
        preview += _progress(green, replicas)
    copies = None
    if strategy.shadow is not None:
        copies = (
            f"shadow: {old} copies {strategy.shadow.percent}% of its requests to {new} for "
            f"{strategy.shadow.duration}, answers seen by no client"
        )
        if step == BlueGreenStage.SHADOWING and timer is not None:
            copies += f"; until {stamp(timer.ends_at)}"
    wait = strategy.auto_promotion_seconds
    if wait is None:
        promotion = "awaiting promotion (`promote` to switch traffic)"
    elif step == BlueGreenStage.PREVIEWING and timer is not None:
        if timer.paused_seconds_left is not None:
            promotion = (
                f"auto-promotion timer frozen with "
                f"{format_seconds(round(timer.paused_seconds_left))} left (paused; `resume`)"
            )
        else:
            promotion = f"auto-promotion at {stamp(timer.ends_at)}"
    else:
        promotion = f"auto-promotion {format_seconds(wait)} after the preview is ready"
    scale_up = f"scale {new} to {_pods(spec.replicas)} before the switch"
    if green and step == BlueGreenStage.SCALING_UP:
        scale_up += _progress(green, replicas)
    switched = None
    if switched_to is not None:
        promoted = next((h.promoted_at for h in status.history if h.revision == switched_to), None)
        switched = f"switched {name} to {switched_to}" + (
            f" at {stamp(promoted)}" if promoted else ""
        )
    delay = strategy.scale_down_delay_seconds
    verifying_until = None
    verified = (BlueGreenStage.VERIFYING, BlueGreenStage.VERIFIED)
    if green and step in verified and timer is not None and status.step_started_at is not None:
        # Switched, the old revision still up: the analysis verifies the switch.
        verifying_until = timer.ends_at
        switched = f"switched {name} to {green} at {stamp(status.step_started_at)}; " + (
            "verification ended by `promote`"
            if step == BlueGreenStage.VERIFIED
            else f"verifying on all traffic until {stamp(verifying_until)}"
        )
    switch = switched or f"switch {name} to {new}"
    waiting = [f"scale down {rev} at {stamp(at)}" for rev, at in sorted(pending.items())]
    if verifying_until is not None:
        scale_down = (
            f"scale down {old} once the switch is verified (not before {stamp(verifying_until)})"
        )
    elif waiting:
        scale_down = "; ".join(waiting)
    else:
        scale_down = f"scale down {old} " + (
            f"{format_seconds(delay)} after the switch" if delay else "at the switch"
        )
    # One line per stage, in order (no shadow line without `shadow`).
    by_stage = {
        BlueGreenStage.PREVIEW_STARTING: preview,
        BlueGreenStage.SHADOWING: copies,
        BlueGreenStage.PREVIEWING: promotion,
        BlueGreenStage.SCALING_UP: scale_up,
        BlueGreenStage.VERIFYING: switch,
        BlueGreenStage.VERIFIED: scale_down,
    }
    ordered = [(stage, line) for stage, line in by_stage.items() if line is not None]
    shown = [line for _, line in ordered]
    current: int | None
    if step is not None:
        current = next((i for i, (stage, _) in enumerate(ordered) if stage == step), None)
    elif switched is not None and not in_flight:
        current = len(shown) - 1
    else:
        current = None
    lines = [
        f"  {'->' if index == current else '  '} {index + 1}. {what}"
        for index, what in enumerate(shown)
    ]
    if in_flight and step is None:  # a stage of a newer operator
        stage = status.stage or status.current_step
        lines.append(f"  -> stage {stage}: {status.reason or 'unknown'} (see Message)")
    return lines


def revision_line(
    label: str, revision: str | None, version: str | None, replicas: Mapping[str, tuple[int, int]]
) -> str:
    if revision is None:
        return f"{label:<10} -"
    ready, wanted = replicas.get(revision, (0, 0))
    return f"{label:<10} {revision}  version {version}  pods {ready}/{wanted} ready"


def _left(seconds: float) -> str:
    whole = max(round(seconds), 0)
    minutes, rest = divmod(whole, 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def progress_lines(
    spec: ModelDeploymentSpec,
    status: ModelDeploymentStatus,
    pods: Mapping[str, PodsObservation],
    now: datetime | None,
) -> list[str]:
    """The pods of the revision being rolled out (or of the first one) while some
    are not ready, and the progress deadline the operator waits against."""
    wait = status.readiness_wait
    revision = status.canary_revision or (wait.revision if wait else None)
    if revision is None:
        return []
    if status.canary_revision is None:
        label = "revision"
    else:
        label = "canary" if spec.strategy.canary else "new"
    lines = []
    seen = pods.get(revision)
    if seen is not None and (seen.not_ready or seen.cause):
        lines.append(f"Pods:      {label} pods {seen.describe()}")
    if wait is None or wait.revision != revision:
        return lines
    limit = format_seconds(spec.progress_deadline_seconds)
    timer = wait.deadline or _deadline_of_older_operator(spec, status)
    ends = timer.ends_at
    if wait.exceeded_at is not None:
        text = (
            f"exceeded at {stamp(wait.exceeded_at)} ({limit}); traffic stays on stable "
            "until `abort` or `promote`"
        )
    elif timer.paused_seconds_left is not None:
        left = timer.paused_seconds_left
        text = f"frozen with {_left(left)} of {limit} left (paused; `resume`)"
    elif now is None:
        text = f"{stamp(ends)} ({limit} after {stamp(wait.since)})"
    elif now < ends:
        text = f"{stamp(ends)} ({_left((ends - now).total_seconds())} of {limit} left)"
    else:
        text = f"{stamp(ends)} (passed, {limit} after {stamp(wait.since)})"
    lines.append(f"Deadline:  progress deadline {text}")
    return lines


def _deadline_of_older_operator(spec: ModelDeploymentSpec, status: ModelDeploymentStatus) -> Timer:
    """The deadline by the core's rule, for a readinessWait written without one."""
    wait = with_deadline(spec, status)
    assert wait is not None and wait.deadline is not None
    return wait.deadline


def route_lines(status: ModelDeploymentStatus) -> list[str]:
    """The Gateway API route(s) as the operator last read them back."""
    routing = status.traffic_routing
    if routing is None:
        return []
    shares = ", ".join(f"{weight}% to {revision}" for revision, weight in routing.weights.items())
    lines = [f"Route:     HTTPRoute {', '.join(routing.routes)}: {shares or 'not as written yet'}"]
    if routing.header_routes:
        lines.append(f"           header routes to the canary: {', '.join(routing.header_routes)}")
    verdict = {"yes": "Accepted, ResolvedRefs", "no": "rejected", "unknown": "not reported"}
    lines.append(
        f"           gateway: {verdict[routing.verified]}"
        + (f" ({routing.message})" if routing.message else "")
    )
    return lines


def shadow_lines(
    spec: ModelDeploymentSpec, status: ModelDeploymentStatus, figures: ShadowFigures | None
) -> list[str]:
    """The shadow phase now, and the champion's figures about it (None: not read)."""
    phase = shadow_phase(spec, status)
    if phase is None:
        return []
    lines = [
        f"Shadow:    revision {status.stable_revision} copies {phase.percent}% of its requests "
        f"to {status.canary_revision} (version {status.canary_version}) for {phase.duration}; "
        "no client sees its answers"
    ]
    if figures is None:
        return lines
    outcomes = ", ".join(f"{figures.outcomes[o]} {o}" for o in OUTCOMES)
    lines.append(
        f"           copies: {outcomes} (read from {figures.pods_read}/{figures.pods} ready "
        f"champion pods, {figures.mirroring_pods} mirroring now)"
    )
    if figures.agreement is not None:
        lines.append(
            f"           agreement: {figures.agreement:.4f} of {figures.compared_rows:.0f} "
            "compared rows so far"
        )
    window = [f"{figures.window_rows:.0f} rows"] if figures.window_rows else []
    if figures.window_agreement is not None:
        window.append(f"agreement {figures.window_agreement:.4f}")
    if figures.window_mean_abs_difference is not None:
        window.append(f"mean |difference| {figures.window_mean_abs_difference:.4g}")
    if figures.window_psi is not None:
        window.append(f"prediction PSI {figures.window_psi:.4f} (largest of the pods)")
    if window:
        lines.append(f"           last window: {', '.join(window)}")
    lines += [f"           not read: {problem}" for problem in figures.problems]
    return lines


def status_lines(
    body: Mapping[str, Any],
    spec: ModelDeploymentSpec,
    status: ModelDeploymentStatus,
    replicas: Mapping[str, tuple[int, int]],
    events: Sequence[tuple[str, str, str]],
    pods: Mapping[str, PodsObservation] | None = None,
    now: datetime | None = None,
    shadowing: ShadowFigures | None = None,
) -> list[str]:
    """`replicas`: revision -> (ready, wanted); `events`: (type, reason, message), oldest
    first; `pods`: revision -> what its pods say; `now` for the time left; `shadowing`:
    the champion's shadow figures, during a shadow phase."""
    meta = body["metadata"]
    strategy = "canary" if spec.strategy.canary else "blue/green"
    lines = [
        f"Name:      {meta['name']}  (namespace {meta['namespace']})",
        f"Model:     {spec.model.name}  {model_source(spec, status)}",
        f"Phase:     {status.phase or 'Pending'}"
        + (f"  ({status.reason})" if status.reason else ""),
        *_generation_lines(meta, status),
        f"Message:   {status.message or '-'}",
        f"Strategy:  {strategy}",
        revision_line("Stable:", status.stable_revision, status.stable_version, replicas),
        revision_line(
            "Canary:" if spec.strategy.canary else "New:",
            status.canary_revision,
            status.canary_version,
            replicas,
        ),
    ]
    if spec.autoscaling is not None:
        scaling = spec.autoscaling
        lines.append(
            f"Autoscale: HPA {n.autoscaler_name(meta['name'])} keeps {scaling.min_replicas}-"
            f"{scaling.max_replicas}; total now {spec.replicas}, "
            f"{status.replicas} pods answering clients"
        )
    lines += progress_lines(spec, status, pods or {}, now)
    if spec.strategy.canary:  # blue/green has no weight: its stages say where traffic goes
        lines.append(f"Weight:    {status.canary_weight}% on the canary")
    lines += route_lines(status)
    lines += shadow_lines(spec, status, shadowing)
    steps = step_lines(spec, status)
    if steps:
        lines += ["Steps:", *steps]
    stages = bluegreen_lines(meta["name"], spec, status, replicas)
    if stages:
        lines += ["Stages:", *stages]
    if status.analysis:
        lines.append("Analysis:")
        for metric, result in sorted(status.analysis.items()):
            value = "-" if result.value is None else f"{result.value:.4g}"
            lines.append(
                f"  {metric:<24} {result.verdict or '-':<12} value {value:<10} "
                f"threshold {result.threshold or '-':<12} ok {result.successes} "
                f"failed {result.failures} nodata {result.no_data} errors {result.errors}"
                + (f" of {result.revision}" if result.revision else "")
            )
            if result.verdict in ("error", "nodata", "fail") and result.message:
                lines.append(f"  {'':<24} {result.message}")
    if status.drift:
        drift = status.drift
        lines.append(f"Drift:     since {drift.since:%Y-%m-%d %H:%M:%S}: {drift.message}")
    lines += retraining_lines(status)
    if status.last_rollback:
        rb = status.last_rollback
        detail = f" ({rb.metric} = {rb.value}, threshold {rb.threshold})" if rb.metric else ""
        lines.append(
            f"Rollback:  {rb.reason}: version {rb.version} at {rb.at:%Y-%m-%d %H:%M:%S}{detail}"
        )
    if status.conditions:
        lines.append("Conditions: " + ", ".join(f"{c.type}={c.status}" for c in status.conditions))
    if events:
        lines.append("Events:")
        lines += [f"  {kind:<8} {reason:<20} {message}" for kind, reason, message in events]
    return lines


def retraining_lines(status: ModelDeploymentStatus) -> list[str]:
    """The run in flight, the last one's end (both sides' metrics), what was deferred."""
    current = status.retraining
    if current is None:
        return []
    lines = []
    if current.active is not None:
        run = current.active
        lines.append(
            f"Retrain:   run {run.number} (Job {run.job}) running since "
            f"{run.started_at:%Y-%m-%d %H:%M:%S}, {run.trigger.lower()}: {run.cause}"
        )
    if current.last is not None:
        run = current.last
        compared = ""
        if run.metric and run.metric in run.candidate and run.metric in run.champion:
            compared = (
                f" {run.metric} {run.candidate[run.metric]:.4g} vs champion "
                f"{run.champion[run.metric]:.4g};"
            )
        version = f" -> version {run.candidate_version}" if run.candidate_version else ""
        lines.append(
            f"Retrained: run {run.number} {run.outcome or '-'}{version}:{compared} {run.message}"
        )
    if current.deferred is not None:
        lines.append(
            f"Deferred:  {current.deferred_count} trigger(s), latest "
            f"{current.deferred.trigger.lower()}: {current.deferred.cause}"
        )
    return lines


def _generation_lines(meta: Mapping[str, Any], status: ModelDeploymentStatus) -> list[str]:
    """A warning when status describes an older spec than the object's."""
    generation = meta.get("generation")
    observed = status.observed_generation
    if generation is None or observed == generation:
        return []
    if observed is None:
        return ["Observed:  the operator has not acted on this object yet"]
    return [
        f"Observed:  spec generation {generation} not acted on yet "
        f"(phase and message are for generation {observed})"
    ]


def list_lines(rows: Sequence[tuple[str, ModelDeploymentStatus]]) -> list[str]:
    header = f"{'NAME':<24} {'PHASE':<12} {'STABLE':<10} {'CANARY':<10} {'WEIGHT':>6}  MESSAGE"
    lines = [header]
    for name, status in rows:
        lines.append(
            f"{name:<24} {status.phase or 'Pending':<12} {status.stable_version or '-':<10} "
            f"{status.canary_version or '-':<10} {status.canary_weight:>5}%  {status.message}"
        )
    return lines


def history_lines(status: ModelDeploymentStatus) -> list[str]:
    lines = [f"{'REVISION':>8}  {'HASH':<10}  {'VERSION':<10}  {'SOURCE':<6}  PROMOTED"]
    for entry in status.history:
        serving = "  (serving)" if entry.revision == status.stable_revision else ""
        lines.append(
            f"{entry.number:>8}  {entry.revision:<10}  {entry.version:<10}  {entry.source:<6}  "
            f"{entry.promoted_at:%Y-%m-%d %H:%M:%S}{serving}"
        )
        if entry.registry is not None:
            lines.append(f"{'':>10}{registry_line(entry.registry)}")
    return lines


def model_source(spec: ModelDeploymentSpec, status: ModelDeploymentStatus) -> str:
    """What the spec asks for: a version, or a registry version or alias (with what
    the operator resolved it to, and where the champion alias points)."""
    registry = spec.model.registry
    if registry is None:
        return f"spec version {spec.model.version}"
    asked = (
        f"registry {registry.name} alias {registry.alias}"
        if registry.alias
        else f"registry {registry.name} version {registry.version}"
    )
    found = status.registry
    if found is None:
        return f"{asked} (not resolved yet)"
    champion = found.champion_version or "-"
    return f"{asked} -> version {found.resolved.version} ({found.champion_alias} -> {champion})" + (
        f"; {found.message}" if found.message else ""
    )


def registry_line(version: RegistryVersion) -> str:
    """A registry version as history and status show it: where it is, the dataset it
    was trained on, and its model card's held-out metrics."""
    dataset = (
        f"dataset sha256:{version.dataset_sha256[:12]}"
        + (f" ({version.dataset_rows} rows)" if version.dataset_rows is not None else "")
        if version.dataset_sha256
        else "dataset not recorded"
    )
    metrics = " ".join(f"{k}={v:.4g}" for k, v in sorted(version.metrics.items()))
    return f"models:/{version.name}/{version.version}  {dataset}" + (
        f"  {metrics}" if metrics else ""
    )
