"""Drift end to end: loadgen traffic into a real server, PSI read from /metrics.

Window sizes: MODELSERVER_DRIFT_WINDOW=1000 rows and MODELSERVER_DRIFT_MIN_SAMPLES=1000,
so the gauges appear exactly when a full window of 1000 single-row requests
has been served; the evaluation timer runs every 0.2 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ms_helpers import Server, label, metric_samples, running_server

from modelserver.loadgen import LoadConfig, run
from support.waiting import wait_for

pytestmark = pytest.mark.integration

WINDOW = 1000
ENV = {
    "MODELSERVER_DRIFT_WINDOW": str(WINDOW),
    "MODELSERVER_DRIFT_MIN_SAMPLES": str(WINDOW),
    "MODELSERVER_DRIFT_INTERVAL_SECONDS": "0.2",
}


def send(server: Server, **drift: Any) -> None:
    config = LoadConfig(
        urls=(server.url,), model="wine", rate=0, duration=None, requests=WINDOW,
        concurrency=8, progress_interval=60, **drift,
    )  # fmt: skip
    summary = run(config)
    assert summary.codes == {"200": WINDOW}


def psi_after_full_window(server: Server) -> dict[str, float]:
    def evaluated() -> dict[str, float] | None:
        text = server.metrics()
        if label(metric_samples(text, "modelserver_drift_window_samples")) != WINDOW:
            return None
        samples = metric_samples(text, "modelserver_feature_drift_psi")
        return {key.split('feature="')[1].split('"')[0]: v for key, v in samples.items()}

    return wait_for(
        evaluated, timeout=30, what="a drift evaluation over the full window", interval=0.05
    )


@pytest.fixture
def server(models: dict[str, dict[str, Any]], tmp_path: Path) -> Iterator[Server]:
    with running_server(models["wine-improved"], tmp_path, **ENV) as s:
        yield s


def test_undrifted_traffic_stays_below_0_1(server: Server) -> None:
    send(server)
    psi = psi_after_full_window(server)
    print("undrifted PSI max", max(psi.values()))
    assert len(psi) == 13
    assert max(psi.values()) < 0.1


def test_drifted_traffic_raises_psi_above_0_25(server: Server) -> None:
    send(server, drift_shift=1.0, drift_features=("alcohol", "proline"))
    psi = psi_after_full_window(server)
    print("drifted PSI", {k: round(v, 3) for k, v in psi.items()})
    assert psi["alcohol"] > 0.25
    assert psi["proline"] > 0.25
    assert psi["hue"] < 0.1  # untouched features stay quiet


def test_live_data_looks_drifted_to_the_shifted_variant(
    models: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    with running_server(models["wine-shifted"], tmp_path, **ENV) as s:
        send(s)
        psi = psi_after_full_window(s)
    print("shifted-variant PSI alcohol", psi["alcohol"])
    assert psi["alcohol"] > 0.25
