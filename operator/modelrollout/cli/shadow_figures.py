"""The shadow figures `status` shows, added up from the champion's pods.

During a shadow phase the stable revision's model servers count the copies they
send and compare the answers (modelserver_shadow_* metrics). The operator keeps
only the verdicts of the analysis metrics; the figures themselves live in the
servers, and a user's machine often cannot reach the cluster's Prometheus. So
`status` reads each champion pod's /metrics through the API server's pod proxy
(kube.py) and this module adds them up: counters summed, the window's agreement
and mean difference weighted by each pod's rows, its prediction PSI the largest
of the pods (PSI is not additive; the worst pod is the one to look at).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

OUTCOMES = ("compared", "failed", "timeout", "dropped")
# The agreement window's figures at its last evaluation (absent before it has any).
WINDOW_GAUGES = frozenset(
    {
        "modelserver_shadow_window_rows",
        "modelserver_shadow_agreement_ratio",
        "modelserver_shadow_prediction_psi",
        "modelserver_shadow_mean_abs_difference",
    }
)


@dataclass(frozen=True)
class PodShadow:
    """One champion pod's shadow figures about the challenger `version`."""

    outcomes: Counter[str] = field(default_factory=Counter)
    agreed_rows: float = 0.0
    compared_rows: float = 0.0
    window_rows: float = 0.0
    window_agreement: float | None = None
    window_psi: float | None = None
    window_mean_abs_difference: float | None = None
    mirror_percent: float | None = None


def read_pod(text: str, version: str) -> PodShadow:
    """The figures in one pod's exposition text about challenger `version` (copies
    nothing answered carry an empty version and count too). Raises ValueError for
    text that is not Prometheus exposition."""
    outcomes: Counter[str] = Counter()
    agreed = compared = 0.0
    window: dict[str, float] = {}
    percent = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels, value = sample.labels, float(sample.value)
            challenger = labels.get("challenger_version")
            if sample.name == "modelserver_shadow_mirror_percent":
                percent = value
            if challenger is None or challenger not in (version, ""):
                continue
            if sample.name == "modelserver_shadow_requests_total":
                outcomes[labels.get("outcome", "unknown")] += int(value)
            elif sample.name == "modelserver_shadow_agreement_total" and challenger == version:
                compared += value
                agreed += value if labels.get("agreed") == "true" else 0.0
            elif sample.name in WINDOW_GAUGES and challenger == version:
                window[sample.name] = value
    return PodShadow(
        outcomes=outcomes,
        agreed_rows=agreed,
        compared_rows=compared,
        window_rows=window.get("modelserver_shadow_window_rows", 0.0),
        window_agreement=window.get("modelserver_shadow_agreement_ratio"),
        window_psi=window.get("modelserver_shadow_prediction_psi"),
        window_mean_abs_difference=window.get("modelserver_shadow_mean_abs_difference"),
        mirror_percent=percent,
    )


@dataclass(frozen=True)
class ShadowFigures:
    """The champion's pods added up; `pods_read` of `pods` answered, `problems` says
    why the others did not."""

    pods: int
    pods_read: int
    outcomes: Counter[str]
    agreement: float | None
    compared_rows: float
    window_rows: float
    window_agreement: float | None
    window_psi: float | None
    window_mean_abs_difference: float | None
    # Pods that report mirroring now (they read the shadow configuration).
    mirroring_pods: int = 0
    problems: tuple[str, ...] = ()


def _weighted(values: Iterable[tuple[float | None, float]]) -> float | None:
    pairs = [(value, weight) for value, weight in values if value is not None and weight > 0]
    total = sum(weight for _, weight in pairs)
    return sum(value * weight for value, weight in pairs) / total if total else None


def combine(read: list[PodShadow], pods: int, problems: tuple[str, ...] = ()) -> ShadowFigures:
    outcomes: Counter[str] = Counter()
    for pod in read:
        outcomes.update(pod.outcomes)
    agreed = sum(pod.agreed_rows for pod in read)
    compared = sum(pod.compared_rows for pod in read)
    psis = [pod.window_psi for pod in read if pod.window_psi is not None]
    return ShadowFigures(
        pods=pods,
        pods_read=len(read),
        outcomes=outcomes,
        agreement=agreed / compared if compared else None,
        compared_rows=compared,
        window_rows=sum(pod.window_rows for pod in read),
        window_agreement=_weighted((p.window_agreement, p.window_rows) for p in read),
        window_psi=max(psis) if psis else None,
        window_mean_abs_difference=_weighted(
            (p.window_mean_abs_difference, p.window_rows) for p in read
        ),
        mirroring_pods=sum(1 for pod in read if pod.mirror_percent),
        problems=problems,
    )
