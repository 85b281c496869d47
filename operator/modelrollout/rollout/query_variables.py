"""The values of a metric query's `{{ variable }}`s: which revision each one names.

The variables are exactly the README's list ("Analysis and automatic rollback";
api.spec.QUERY_VARIABLES; the operator rejects others as InvalidSpec before
anything is measured).
`version`/`revision` name the revision being measured: the canary during a
rollout, the stable one for the stable side of `compareTo: stable` and for the
drift watch. While no rollout runs the stable revision is also what
`canaryVersion`/`canaryRevision` name, so a query written for the canary (as in
examples/canary.yaml) watches the stable revision unchanged. Which revision is
measured is measurement.py's decision; substituting them into PromQL (and
escaping) is the metrics layer's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from modelrollout.api.spec import QUERY_VARIABLES

Side = Literal["canary", "stable"]


@dataclass(frozen=True)
class QueryContext:
    namespace: str
    name: str
    canary_revision: str
    canary_version: str
    stable_revision: str
    stable_version: str
    interval_seconds: float


def variables(context: QueryContext, side: Side) -> dict[str, str]:
    measured = (
        (context.canary_revision, context.canary_version)
        if side == "canary"
        else (context.stable_revision, context.stable_version)
    )
    values = {
        "namespace": context.namespace,
        "name": context.name,
        "revision": measured[0],
        "version": measured[1],
        "canaryRevision": context.canary_revision,
        "canaryVersion": context.canary_version,
        "stableRevision": context.stable_revision,
        "stableVersion": context.stable_version,
        "interval": promql_duration(context.interval_seconds),
    }
    assert values.keys() == QUERY_VARIABLES, "the variables and the spec's list disagree"
    return values


def promql_duration(seconds: float) -> str:
    """30.0 -> "30s", 1.5 -> "1500ms": PromQL durations take no fractions."""
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"
