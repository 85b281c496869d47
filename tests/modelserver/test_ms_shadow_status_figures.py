"""`status`'s shadow block reads what the real server exports: two champion pods'
ShadowMetrics rendered as Prometheus text, added up as the CLI adds them (counters
summed, window agreement weighted by rows, PSI the largest), a previous
challenger's series left out."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from modelrollout.cli.shadow_figures import OUTCOMES, combine, read_pod
from modelserver.agreement import AgreementSnapshot, Compared
from modelserver.metrics import SHADOW_OUTCOMES, ShadowMetrics

pytestmark = pytest.mark.unit

BASE = {"model_name": "wine", "model_version": "1", "revision": "abc"}


def champion_pod(
    agreed: int, rows: int, window: AgreementSnapshot, dropped: int = 0
) -> tuple[str, ShadowMetrics]:
    registry = CollectorRegistry()
    metrics = ShadowMetrics(registry, BASE, regression=False)
    metrics.mirror_percent.set(25)
    for _ in range(rows // 10):
        metrics.count_compared("2", Compared(rows=10, agreed=agreed * 10 // rows))
    for _ in range(dropped):
        metrics.count_outcome("", "dropped")
    metrics.count_compared("1", Compared(rows=10, agreed=0))  # an earlier challenger
    metrics.count_outcome("2", "failed")
    metrics.window.snapshot = window
    return generate_latest(registry).decode(), metrics


def test_the_champion_pods_figures_add_up_as_status_shows_them() -> None:
    first, _ = champion_pod(
        agreed=90,
        rows=100,
        window=AgreementSnapshot("2", rows=100, agreement=0.9, prediction_psi=0.02),
        dropped=3,
    )
    second, _ = champion_pod(
        agreed=300,
        rows=300,
        window=AgreementSnapshot("2", rows=300, agreement=1.0, prediction_psi=0.01),
    )
    figures = combine([read_pod(first, "2"), read_pod(second, "2")], pods=3, problems=("p3: x",))
    assert figures.outcomes == {"compared": 40, "failed": 2, "dropped": 3, "timeout": 0}
    assert figures.agreement == pytest.approx(390 / 400), "version 1's copies are not counted"
    assert figures.window_agreement == pytest.approx((0.9 * 100 + 1.0 * 300) / 400)
    assert figures.window_psi == pytest.approx(0.02)
    assert figures.window_rows == 400 and figures.mirroring_pods == 2
    assert (figures.pods_read, figures.pods, figures.problems) == (2, 3, ("p3: x",))


def test_a_pod_before_its_first_window_has_counts_but_no_window_figures() -> None:
    text, _ = champion_pod(agreed=10, rows=10, window=AgreementSnapshot("", rows=0))
    pod = read_pod(text, "2")
    assert pod.outcomes["compared"] == 1 and pod.window_agreement is None
    assert pod.window_rows == 0


def test_the_cli_knows_every_outcome_the_server_counts() -> None:
    assert OUTCOMES == SHADOW_OUTCOMES
