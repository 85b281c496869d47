"""A packaged regressor served by a real `modelrollout serve` process: predictions,
numeric feedback and the live-error metrics a rollout's analysis gates on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import skops.io
from ms_helpers import http, label, metric_samples, running_server
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelserver.packaging import package
from support.waiting import wait_for

pytestmark = pytest.mark.integration


def test_a_packaged_regressor_reports_live_mae_from_feedback(tmp_path: Path) -> None:
    frame = load_diabetes(as_frame=True).frame
    features = frame.drop(columns="target")
    pipeline = make_pipeline(StandardScaler(), Ridge()).fit(features, frame["target"])
    skops.io.dump(pipeline, tmp_path / "ridge.skops")
    frame.to_csv(tmp_path / "diabetes.csv", index=False)
    packaged = package(
        tmp_path / "ridge.skops", tmp_path / "diabetes.csv", "target", tmp_path / "pkg"
    )
    artifact = {"uri": packaged.artifact.as_uri(), "sha256": packaged.sha256}
    rows = features.iloc[:20]
    body = {
        "id": "batch-1",
        "inputs": [
            {"name": c, "datatype": "FP64", "shape": [len(rows)], "data": rows[c].tolist()}
            for c in rows.columns
        ],
    }
    with running_server(
        artifact,
        tmp_path,
        name="diabetes",
        MODELSERVER_FEEDBACK_MIN_SAMPLES="10",
        MODELSERVER_DRIFT_INTERVAL_SECONDS="0.2",
    ) as server:
        status, answer, _ = http("POST", f"{server.url}/v2/models/diabetes/infer", json.dumps(body))
        assert status == 200, answer
        [output] = answer["outputs"]
        assert output["datatype"] == "FP64"
        assert output["data"] == pytest.approx(pipeline.predict(rows).tolist())
        truth = frame["target"].iloc[:20].tolist()
        status, scored, _ = http(
            "POST",
            f"{server.url}/v2/models/diabetes/feedback",
            json.dumps({"id": "batch-1", "labels": truth}),
        )
        assert status == 200, scored
        expected = sum(abs(t - p) for t, p in zip(truth, output["data"], strict=True)) / 20
        assert scored == {
            "id": "batch-1",
            "scored": 20,
            "mean_absolute_error": pytest.approx(expected),
        }

        def mae() -> float | None:
            return label(metric_samples(server.metrics(), "modelserver_feedback_mae"))

        wait_for(lambda: mae() is not None, timeout=10, what="the live MAE gauge", interval=0.1)
        assert mae() == pytest.approx(expected)
        text = server.metrics()
        assert label(metric_samples(text, "modelserver_feedback_absolute_error_count")) == 20
        assert label(metric_samples(text, "modelserver_feedback_total"), outcome="scored") == 20
