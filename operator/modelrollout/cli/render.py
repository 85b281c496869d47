"""Text views of ModelDeployments for `status`, `list` and `history`. Pure:
objects in, lines out, so what users read is unit-tested."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelrollout.api import (
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    format_seconds,
    parse_duration,
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
        if step.set_weight is not None:
            what = f"setWeight {step.set_weight}%"
        elif step.pause is not None and step.pause.duration:
            what = f"pause {format_seconds(parse_duration(step.pause.duration))}"
        else:
            what = "pause (until promote)"
        lines.append(f"  {marker} {index + 1}. {what}")
    return lines


def revision_line(
    label: str, revision: str | None, version: str | None, replicas: Mapping[str, tuple[int, int]]
) -> str:
    if revision is None:
        return f"{label:<10} -"
    ready, wanted = replicas.get(revision, (0, 0))
    return f"{label:<10} {revision}  version {version}  pods {ready}/{wanted} ready"


def status_lines(
    body: Mapping[str, Any],
    spec: ModelDeploymentSpec,
    status: ModelDeploymentStatus,
    replicas: Mapping[str, tuple[int, int]],
    events: Sequence[tuple[str, str, str]],
) -> list[str]:
    """`replicas`: revision -> (ready, wanted); `events`: (type, reason, message), oldest first."""
    meta = body["metadata"]
    strategy = "canary" if spec.strategy.canary else "blue/green"
    lines = [
        f"Name:      {meta['name']}  (namespace {meta['namespace']})",
        f"Model:     {spec.model.name}  spec version {spec.model.version}",
        f"Phase:     {status.phase or 'Pending'}"
        + (f"  ({status.reason})" if status.reason else ""),
        *_generation_lines(meta, status),
        f"Message:   {status.message or '-'}",
        f"Strategy:  {strategy}",
        revision_line("Stable:", status.stable_revision, status.stable_version, replicas),
        revision_line("Canary:", status.canary_revision, status.canary_version, replicas),
        f"Weight:    {status.canary_weight}% on the canary",
    ]
    steps = step_lines(spec, status)
    if steps:
        lines += ["Steps:", *steps]
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
    return lines
