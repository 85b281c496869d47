"""The inputs of one plan call, bundled so stages read them uniformly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from modelrollout.api import ModelDeploymentSpec
    from modelrollout.rollout.observed import Observed


@dataclass(frozen=True)
class Context:
    spec: ModelDeploymentSpec
    observed: Observed
    now: datetime
    # The revision of the current spec (what a rollout goes toward).
    target: str

    @property
    def replicas(self) -> int:
        return self.spec.replicas

    @property
    def analysis_interval(self) -> float | None:
        """Seconds between measurements while a rollout runs; None without analysis."""
        analysis = self.spec.analysis
        return analysis.interval_seconds if analysis and analysis.configured else None
