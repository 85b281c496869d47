"""Query templates: `{{ variable }}` replaced by the rollout's names and versions.

The variables are exactly DESIGN.md's list (api.spec.QUERY_VARIABLES; the
operator rejects others as InvalidSpec before anything is measured).
`version`/`revision` name the revision being measured: the canary during a
rollout, the stable one for the stable side of `compareTo: stable` and for the
drift watch. While no rollout runs the stable revision is also what
`canaryVersion`/`canaryRevision` name, so a query written for the canary (as in
DESIGN.md's example) watches the stable revision unchanged.

Values are escaped for a PromQL double-quoted string, where queries use them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from modelrollout.api.spec import QUERY_VARIABLE, QUERY_VARIABLES

Side = Literal["canary", "stable"]


class TemplateError(ValueError):
    """A query names a variable that does not exist."""


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
    assert values.keys() == QUERY_VARIABLES, "templating and the spec's variable list disagree"
    return values


def render(query: str, values: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise TemplateError(f"unknown variable {{{{ {name} }}}} in query")
        return values[name].replace("\\", "\\\\").replace('"', '\\"')

    return QUERY_VARIABLE.sub(substitute, query)


def promql_duration(seconds: float) -> str:
    """30.0 -> "30s", 1.5 -> "1500ms": PromQL durations take no fractions."""
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"
