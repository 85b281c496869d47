"""Shadow traffic between real servers on loopback: the champion mirrors a sample of
its requests to the challenger and compares the answers.

The expected sample is computed with the hash the server uses (records.sampled) and
the expected agreement, difference and accuracy from the artifacts' own predictions,
so counts and figures are asserted exactly (shadow_helpers has the servers).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ms_helpers import Server, http, label, metric_samples, v2_body
from shadow_helpers import (
    WINE,
    Pair,
    by_hand_psi,
    mirroring,
    plan,
    predicted,
    send,
    serving_pair,
    settled,
    shadow,
    window,
)

from modelserver.records import RecordStore, sampled
from modelserver.tensors import HEADER_LENGTH, encode_raw
from support.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def agreeing(
    models: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    """Champion and challenger serve the same artifact: they agree on every row."""
    wine = models["wine-improved"]
    with serving_pair(wine, wine, tmp_path_factory.mktemp("agreeing")) as pair:
        yield pair


def test_an_agreeing_challenger_is_compared_on_exactly_the_sampled_requests(
    agreeing: Pair, models: dict[str, dict[str, Any]]
) -> None:
    agreeing.config.write(plan(50))
    mirroring(agreeing.champion, 50.0)
    ids = [f"agree-{i}" for i in range(200)]
    expected = sum(sampled(i, 0.5) for i in ids)
    print(f"50% of 200 requests: {expected} in the id hash's sample")
    before = settled(agreeing.champion).get("compared", 0.0)
    assert send(agreeing.champion, ids) == predicted(models["wine-improved"], ids)
    seen = settled(agreeing.champion)
    assert seen["compared"] == before + expected
    assert seen["failed"] == seen["timeout"] == seen["dropped"] == 0.0
    copies = before + expected
    version = {"challenger_version": "2"}
    assert shadow(agreeing.champion, "agreement_total", agreed="true", **version) == copies
    assert shadow(agreeing.champion, "agreement_total", agreed="false", **version) == 0.0
    figures = window(agreeing.champion, int(copies))
    assert figures == {"agreement_ratio": 1.0, "prediction_psi": 0.0, "mean_abs_difference": None}
    # The challenger served every copy, counted apart from client requests, and its
    # drift window saw the live inputs.
    other = agreeing.challenger
    assert shadow(other, "served_total", endpoint="infer", code="200") == copies
    assert label(metric_samples(other.metrics(), "modelserver_requests_total")) is None
    wait_for(
        lambda: (
            label(metric_samples(other.metrics(), "modelserver_drift_window_samples")) == copies
        ),
        timeout=10,
        what="the challenger's drift window to hold the copies' rows",
    )


def test_every_rest_form_of_a_request_is_mirrored_and_compared(agreeing: Pair) -> None:
    agreeing.config.write(plan(100))
    mirroring(agreeing.champion, 100.0)
    before = settled(agreeing.champion)["compared"]
    url = agreeing.champion.url
    row = {n: float(v) for n, v in zip(WINE.feature_names, WINE.X[3], strict=True)}
    # The versioned route: the copy goes to the challenger's unversioned one.
    status, _, _ = http("POST", f"{url}/v2/models/wine/versions/1/infer", v2_body(row, id="f-1"))
    assert status == 200
    status, body, _ = http(
        "POST", f"{url}/v1/models/wine:predict", json.dumps({"instances": [row, row]})
    )
    assert status == 200 and len(body["predictions"]) == 2
    # The binary tensor extension, in and out (tritonclient's default).
    parts = [encode_raw(np.array([value]), "FP64") for value in row.values()]
    header = json.dumps(
        {
            "id": "f-3",
            "inputs": [
                {"name": n, "datatype": "FP64", "shape": [1],
                 "parameters": {"binary_data_size": len(p)}}
                for n, p in zip(row, parts, strict=True)
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()  # fmt: skip
    status, _, headers = http(
        "POST",
        f"{url}/v2/models/wine/infer",
        header + b"".join(parts),
        {HEADER_LENGTH: str(len(header)), "Content-Type": "application/octet-stream"},
    )
    assert status == 200 and HEADER_LENGTH in headers
    # Only probabilities asked for: nothing to compare, so no copy.
    status, _, _ = http(
        "POST", f"{url}/v2/models/wine/infer", v2_body(row, outputs=[{"name": "predict_proba"}])
    )
    assert status == 200
    # A request already marked as a copy is served, never mirrored on.
    status, _, _ = http(
        "POST", f"{url}/v2/models/wine/infer", v2_body(row), {"X-Modelrollout-Shadow": "1"}
    )
    assert status == 200
    seen = settled(agreeing.champion)
    assert seen["compared"] == before + 3
    assert seen["failed"] == seen["timeout"] == seen["dropped"] == 0.0
    assert shadow(agreeing.challenger, "served_total", endpoint="predict", code="200") == 1.0


def test_configuration_changes_are_picked_up_without_a_restart(agreeing: Pair) -> None:
    champion, config = agreeing.champion, agreeing.config

    def copies_for(ids: list[str]) -> float:
        before = sum(settled(champion).values())
        send(champion, ids)
        return sum(settled(champion).values()) - before

    config.write(plan(0))
    print("percent 0 read after", round(mirroring(champion, 0.0), 2), "s")
    assert copies_for([f"off-{i}" for i in range(30)]) == 0
    config.write(plan(50))
    print("percent 50 read after", round(mirroring(champion, 50.0), 2), "s")
    ids = [f"half-{i}" for i in range(60)]
    assert copies_for(ids) == sum(sampled(i, 0.5) for i in ids)
    config.write(plan(0))
    mirroring(champion, 0.0)
    assert copies_for([f"off-again-{i}" for i in range(30)]) == 0

    def logged(text: str) -> int:
        return sum(text in line["msg"] for line in champion.log_lines())

    config.write(plan(100))
    mirroring(champion, 100.0)
    config.write(plan(100, champion="rev-someone-else"))
    mirroring(champion, 0.0)
    assert copies_for([f"not-me-{i}" for i in range(20)]) == 0
    assert logged("is not the champion 'rev-someone-else'") == 1
    config.write(plan(100))
    mirroring(champion, 100.0)
    config.write('{"percent": 100, "champion": ')
    mirroring(champion, 0.0)
    assert copies_for([f"broken-{i}" for i in range(20)]) == 0
    config.write(plan(100))
    mirroring(champion, 100.0)
    # The broken file was stat'ed every second while it lasted, and logged once.
    assert logged("malformed shadow configuration") == 1
    assert copies_for([f"back-{i}" for i in range(10)]) == 10


def test_a_challenger_that_disagrees_on_a_slice_pulls_agreement_under_the_gate(
    models: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    # The degraded variant learned a labelling bug: it calls part of the largest
    # class another class, and agrees with the champion elsewhere.
    champion, challenger = models["wine-improved"], models["wine-degraded"]
    ids = [f"slice-{i}" for i in range(100)]
    expected = [n for n, i in enumerate(ids) if sampled(i, 0.6)]
    ours = predicted(champion, ids, count=3)
    theirs = predicted(challenger, ids, count=3)
    own = [label for n in expected for label in ours[n]]
    other = [label for n in expected for label in theirs[n]]
    matches = sum(a == b for a, b in zip(own, other, strict=True))
    agreement = matches / len(own)
    print(f"expected agreement over {len(own)} rows: {agreement:.3f}")
    assert agreement < 0.9  # the gate in the README's example is 0.97
    with serving_pair(champion, challenger, tmp_path) as pair:
        pair.config.write(plan(60))
        mirroring(pair.champion, 60.0)
        assert send(pair.champion, ids, count=3) == ours  # clients get the champion's answers
        assert settled(pair.champion)["compared"] == len(expected)
        figures = window(pair.champion, len(own))
        version = {"challenger_version": "2"}
        agreed = shadow(pair.champion, "agreement_total", agreed="true", **version)
        disagreed = shadow(pair.champion, "agreement_total", agreed="false", **version)
    assert (agreed, disagreed) == (matches, len(own) - matches)
    assert figures["agreement_ratio"] == pytest.approx(agreement)
    classes = ["class_0", "class_1", "class_2"]
    assert figures["prediction_psi"] == pytest.approx(by_hand_psi(own, other, classes))


def test_a_regressor_challenger_is_measured_by_its_mean_absolute_difference(
    tmp_path: Path,
) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from modelserver.packaging import package

    frame = load_diabetes(as_frame=True).frame
    features = frame.drop(columns="target")
    artifacts, predictions = [], []
    for alpha in (1.0, 300.0):
        pipeline = make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(features, frame.target)
        found = package(pipeline, frame, "target", tmp_path / f"ridge-{alpha:g}")
        artifacts.append({"uri": found.artifact.as_uri(), "sha256": found.sha256})
        predictions.append(pipeline.predict(features.iloc[:40]))
    with serving_pair(*artifacts, tmp_path, name="diabetes") as pair:
        pair.config.write(plan(100))
        mirroring(pair.champion, 100.0)
        for i in range(40):
            row = {n: float(v) for n, v in features.iloc[i].items()}
            url = f"{pair.champion.url}/v2/models/diabetes/infer"
            assert http("POST", url, v2_body(row))[0] == 200
        assert settled(pair.champion)["compared"] == 40
        figures = window(pair.champion, 40)
        count = shadow(pair.champion, "absolute_difference_count", challenger_version="2")
    differences = np.abs(predictions[0] - predictions[1])
    print(f"expected mean |difference| {differences.mean():.3f}")
    assert figures["mean_abs_difference"] == pytest.approx(differences.mean())
    assert figures["agreement_ratio"] is None
    assert figures["prediction_psi"] is not None
    assert count == 40


def live_accuracy(server: Server) -> float:
    found: float = wait_for(
        lambda: label(metric_samples(server.metrics(), "modelserver_feedback_accuracy")),
        timeout=30,
        what="the live accuracy of the labelled rows",
    )
    return found


def test_with_the_records_store_a_label_at_the_champion_scores_the_challenger_too(
    models: dict[str, dict[str, Any]], tmp_path: Path, records_dsn: str
) -> None:
    champion, challenger = models["wine-improved"], models["wine-degraded"]
    # Every row of the table once: the labelling bug shows on the largest class.
    ids = [f"labelled-{i}" for i in range(len(WINE.y))]
    truth = [str(WINE.y[i]) for i in range(len(ids))]
    ours, theirs = predicted(champion, ids), predicted(challenger, ids)
    expected = {
        "champion": sum(p == [t] for p, t in zip(ours, truth, strict=True)) / len(ids),
        "challenger": sum(p == [t] for p, t in zip(theirs, truth, strict=True)) / len(ids),
    }
    print(f"expected live accuracy on the same requests: {expected}")
    store = {
        "MODELSERVER_RECORDS_DSN": records_dsn,
        "MODELSERVER_RECORDS_FLUSH_SECONDS": "0.2",
        # The gauge appears once every labelled row has joined its prediction.
        "MODELSERVER_FEEDBACK_MIN_SAMPLES": str(len(ids)),
    }
    name = "shadow-records"
    with serving_pair(champion, challenger, tmp_path, name, **store) as pair:
        pair.config.write(plan(100))
        mirroring(pair.champion, 100.0)
        assert send(pair.champion, ids, name=name) == ours
        assert settled(pair.champion)["compared"] == len(ids)
        # Labels arrive later, at the champion: the only server clients know.
        for request_id, label_ in zip(ids, truth, strict=True):
            body = json.dumps({"id": request_id, "labels": [label_]})
            url = f"{pair.champion.url}/v2/models/{name}/feedback"
            assert http("POST", url, body)[0] == 200
        accuracy = {
            "champion": live_accuracy(pair.champion),
            "challenger": live_accuracy(pair.challenger),
        }
    assert accuracy == pytest.approx(expected)
    assert accuracy["challenger"] < accuracy["champion"] - 0.2
    # The requests are the champion's: its answers, not the copies', are what feedback joins.
    recorded = RecordStore(records_dsn)
    assert [list(recorded.predictions(i) or ()) for i in ids] == ours
    recorded.close()
