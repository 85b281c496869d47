"""The champion's comparison window, and reading the challenger's answers.

Agreement per row, PSI between the two prediction distributions over the
profile's bins (written out by hand here), a regressor's mean absolute
difference, the minimum before any figure, sliding, a new challenger version
starting afresh, and answers that cannot be compared.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from modelserver.agreement import AgreementWindow, ShadowAnswerError
from modelserver.profile import categorical_profile, numeric_profile
from modelserver.shadow import predictions
from modelserver.tensors import HEADER_LENGTH, encode_raw

pytestmark = pytest.mark.unit

CLASSES = categorical_profile("prediction", ["a", "b", "c"], ["a", "b", "c"])


def by_hand_psi(first: list[str], second: list[str], bins: list[str]) -> float:
    total = 0.0
    for b in bins:
        p = max(first.count(b) / len(first), 1e-4)
        q = max(second.count(b) / len(second), 1e-4)
        total += (q - p) * math.log(q / p)
    return total


def test_a_classifier_window_reports_agreement_and_prediction_psi_from_the_minimum() -> None:
    window = AgreementWindow(CLASSES, regression=False, window=100, min_rows=10)
    champion = ["a", "a", "b", "b", "c", "a", "b", "c", "a", "a", "b", "c"]
    challenger = ["a", "a", "b", "c", "c", "a", "b", "c", "b", "a", "b", "x"]
    first = window.compare("2", np.array(champion[:8], dtype=object), challenger[:8])
    assert (first.rows, first.agreed) == (8, 7)
    early = window.evaluate()
    assert (early.rows, early.agreement, early.prediction_psi) == (8, None, None)
    window.compare("2", np.array(champion[8:], dtype=object), challenger[8:])
    snapshot = window.evaluate()
    assert snapshot.challenger_version == "2"
    assert snapshot.rows == 12
    assert snapshot.agreement == pytest.approx(9 / 12)
    # "x" is a class the champion's profile never saw: the extra bin.
    assert snapshot.prediction_psi == pytest.approx(
        by_hand_psi(champion, challenger, ["a", "b", "c", "x"])
    )
    assert snapshot.mean_abs_difference is None


def test_labels_are_compared_as_strings_as_feedback_compares_them() -> None:
    window = AgreementWindow(
        categorical_profile("prediction", ["0", "1"], ["0", "1"]), False, 10, 1
    )
    assert window.compare("2", np.array([0, 1, 1]), [0, "1", 0]).agreed == 2


def test_the_window_slides_and_a_new_challenger_version_starts_it_afresh() -> None:
    window = AgreementWindow(CLASSES, regression=False, window=10, min_rows=5)
    window.compare("2", np.array(["a"] * 10, dtype=object), ["b"] * 10)
    window.compare("2", np.array(["a"] * 6, dtype=object), ["a"] * 6)
    assert window.evaluate().agreement == pytest.approx(0.6)  # the last 10 rows
    window.compare("3", np.array(["a"] * 4, dtype=object), ["a"] * 4)
    fresh = window.evaluate()
    assert (fresh.challenger_version, fresh.rows, fresh.agreement) == ("3", 4, None)


def test_a_regressor_window_reports_the_mean_absolute_difference() -> None:
    deciles = numeric_profile("prediction", np.arange(100.0), 10)
    window = AgreementWindow(deciles, regression=True, window=100, min_rows=4)
    champion = np.array([10.0, 20.0, 30.0, 40.0])
    compared = window.compare("2", champion, [12.0, 20, 27.5, 50.0])
    assert compared.differences == (2.0, 0.0, 2.5, 10.0)
    snapshot = window.evaluate()
    assert snapshot.mean_abs_difference == pytest.approx(14.5 / 4)
    assert snapshot.agreement is None
    assert snapshot.prediction_psi is not None and snapshot.prediction_psi > 0


@pytest.mark.parametrize(
    ("regression", "answer", "problem"),
    [
        (False, ["a"], "predicted 1 rows for a request of 2"),
        (False, ["a", {"label": "b"}], "not class labels"),
        (False, ["a", None], "not class labels"),
        (True, [1.0, "2"], "not finite numbers"),
        (True, [1.0, True], "not finite numbers"),
        (True, [1.0, float("nan")], "not finite numbers"),
    ],
)
def test_an_answer_that_cannot_be_compared_is_refused_and_adds_nothing(
    regression: bool, answer: list[object], problem: str
) -> None:
    profile = numeric_profile("prediction", np.arange(10.0), 5) if regression else CLASSES
    window = AgreementWindow(profile, regression, window=10, min_rows=1)
    champion = np.array([1.0, 2.0]) if regression else np.array(["a", "b"], dtype=object)
    with pytest.raises(ShadowAnswerError, match=problem):
        window.compare("2", champion, answer)
    assert window.evaluate().rows == 0


def v2_answer(**predict: object) -> bytes:
    return json.dumps(
        {"id": "r", "outputs": [{"name": "predict_proba", "data": [0.5, 0.5]}, predict]}
    ).encode()


def test_the_predict_output_is_read_from_json_binary_and_v1_answers() -> None:
    assert predictions("v2", {}, v2_answer(name="predict", data=["a", "b"])) == ["a", "b"]
    assert predictions("v1", {}, b'{"predictions": [1.5, 2.5]}') == [1.5, 2.5]
    # The binary tensor extension: outputs in order after the JSON header.
    proba = encode_raw(np.array([0.2, 0.8, 0.6, 0.4]), "FP64")
    labels = encode_raw(np.array(["b", "a"], dtype=object), "BYTES")
    header = json.dumps(
        {
            "outputs": [
                {"name": "predict_proba", "datatype": "FP64", "shape": [2, 2],
                 "parameters": {"binary_data_size": len(proba)}},
                {"name": "predict", "datatype": "BYTES", "shape": [2],
                 "parameters": {"binary_data_size": len(labels)}},
            ]
        }
    ).encode()  # fmt: skip
    body = header + proba + labels
    assert predictions("v2", {HEADER_LENGTH: str(len(header))}, body) == ["b", "a"]


@pytest.mark.parametrize(
    "raw",
    [
        b"<html>502 Bad Gateway</html>",
        b"[1, 2]",
        json.dumps({"outputs": [{"name": "predict_proba", "data": [1.0]}]}).encode(),
        v2_answer(name="predict", data="a"),
        b'{"predictions": "a"}',
    ],
    ids=["html", "a-list", "no-predict", "data-not-a-list", "v1-not-a-list"],
)
def test_an_answer_without_predictions_is_refused(raw: bytes) -> None:
    route = "v1" if raw.startswith(b'{"predictions"') else "v2"
    with pytest.raises(ValueError):
        predictions(route, {}, raw)
