"""Loadgen against a real server: categorical drift options and the rate it achieves.

Penguins (2 categorical features) with unseen categories and dropped features:
the server's counters must match, request for request, what loadgen sent,
and the categorical PSI must rise. Window: MODELSERVER_DRIFT_WINDOW=1000 rows
and MODELSERVER_DRIFT_MIN_SAMPLES=1000, evaluated every 0.2 s.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from ms_helpers import label, metric_samples, running_server

from modelserver.datasets import load_dataset
from modelserver.loadgen import LoadConfig, Summary, prepare_requests, run
from support.waiting import wait_for

WINDOW = 1000
ENV = {
    "MODELSERVER_DRIFT_WINDOW": str(WINDOW),
    "MODELSERVER_DRIFT_MIN_SAMPLES": str(WINDOW),
    "MODELSERVER_DRIFT_INTERVAL_SECONDS": "0.2",
}


def by_feature(text: str, name: str) -> dict[str, float]:
    return {
        key.split('feature="')[1].split('"')[0]: value
        for key, value in metric_samples(text, name).items()
    }


def expected_effects(config: LoadConfig) -> tuple[int, Counter[str], Counter[str]]:
    """(complete requests, unseen values per feature in them, missing feature per request),
    read from the very bodies loadgen sends (the same seed builds the same pool)."""
    data = load_dataset(config.dataset)
    assert config.requests is not None
    complete, unseen, missing = 0, Counter[str](), Counter[str]()
    for item in prepare_requests(config, data, config.requests):
        columns = {t["name"]: t["data"] for t in json.loads(item.body)["inputs"]}
        absent = [n for n in data.feature_names if n not in columns]
        if absent:
            missing.update(absent)
            continue
        complete += 1
        for name, values in columns.items():
            unseen[name] += sum(1 for v in values if v == f"unseen-{name}")
    return complete, unseen, missing


@pytest.mark.integration
def test_unseen_categories_and_dropped_features_are_counted_and_drift_categorical_psi(
    models: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    base = {"urls": (), "model": "penguins", "dataset": "penguins", "rate": 0.0}
    base |= {"duration": None, "concurrency": 8, "progress_interval": 60.0}
    with running_server(models["penguins-improved"], tmp_path, name="penguins", **ENV) as s:
        urls = (s.url,)
        clean = run(LoadConfig(**{**base, "urls": urls, "requests": WINDOW}))
        assert clean.codes == {"200": WINDOW}
        assert clean.versions == {"1": WINDOW}  # every answer counted by who gave it

        def psi_when(ready: Any) -> dict[str, float]:
            def probe() -> dict[str, float] | None:
                text = s.metrics()
                if label(metric_samples(text, "modelserver_drift_window_samples")) != WINDOW:
                    return None
                psi = by_feature(text, "modelserver_feature_drift_psi")
                return psi if psi and ready(psi) else None

            return wait_for(probe, timeout=30, what="a drift evaluation", interval=0.05)

        quiet = psi_when(lambda psi: True)
        print("clean penguins PSI", {k: round(v, 3) for k, v in quiet.items()})
        assert max(quiet.values()) < 0.1
        text = s.metrics()
        assert set(by_feature(text, "modelserver_feature_unseen_category_total").values()) == {0}
        assert set(by_feature(text, "modelserver_feature_missing_total").values()) == {0}

        drifted = LoadConfig(
            **{**base, "urls": urls, "requests": 1400, "seed": 3},
            unseen_share=0.3,
            drop_share=0.2,
        )
        complete, unseen, missing = expected_effects(drifted)
        assert complete >= WINDOW  # the window ends up holding drifted rows only
        summary = run(drifted)
        assert summary.codes == {"200": complete, "400": 1400 - complete}

        text = s.metrics()
        counted_unseen = by_feature(text, "modelserver_feature_unseen_category_total")
        assert counted_unseen == {"island": unseen["island"], "sex": unseen["sex"]}
        assert unseen["island"] > 0.25 * complete  # the option really did something
        counted_missing = by_feature(text, "modelserver_feature_missing_total")
        assert {k: v for k, v in counted_missing.items() if v} == dict(missing)
        assert sum(missing.values()) == 1400 - complete

        # The unseen categories land in the "not in training" bin: categorical PSI rises.
        psi = psi_when(lambda psi: psi["island"] > 0.25 and psi["sex"] > 0.25)
        print("drifted penguins PSI", {k: round(v, 3) for k, v in psi.items()})
        assert psi["island"] > quiet["island"]
        assert psi["sex"] > quiet["sex"]


@pytest.mark.integration
def test_a_rate_the_server_cannot_sustain_is_reported_and_its_wait_timed(
    models: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    delay, rate, n = 0.05, 200.0, 20
    # One request in flight, each taking at least `delay`: at most 20 req/s, not 200.
    with running_server(
        models["wine-improved"], tmp_path, MODELSERVER_FAULT_LATENCY_SECONDS=str(delay)
    ) as s:
        out = io.StringIO()
        config = LoadConfig(
            urls=(s.url,), model="wine", rate=rate, duration=None, requests=n,
            concurrency=1, progress_interval=60,
        )  # fmt: skip
        summary = run(config, out)
    assert summary.codes == {"200": n}
    report = summary.to_json()
    assert report["target_requests_per_second"] == rate
    assert report["requests_per_second"] <= 1 / delay
    assert "below the target 200 req/s" in report["rate_warning"]
    assert "warning: achieved" in out.getvalue()
    assert "(target 200/s)" in summary.line()
    # Request i was due at i/rate but could not start before i*delay: timed from its
    # schedule, the last one waited at least (n-1)*(delay - 1/rate), not just `delay`.
    assert max(summary.latencies) >= (n - 1) * (delay - 1 / rate)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("target", "warned"), [(None, False), (10.0, False), (11.0, False), (12.0, True)]
)
def test_the_summary_reports_the_achieved_rate_against_the_target(
    target: float | None, warned: bool
) -> None:
    summary = Summary(sent=100, elapsed=10.0, target_rate=target)
    report = summary.to_json()
    assert report["requests_per_second"] == 10.0
    assert report["target_requests_per_second"] == target
    assert (report["rate_warning"] is not None) is warned
    if warned:
        assert report["rate_warning"].startswith("achieved 10.0 req/s, 17% below the target 12")
