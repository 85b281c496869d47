"""The transport-agnostic core with real trained pipelines: bad input, counting, feedback."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from modelserver.service import (
    InjectedFaultError,
    InputError,
    ModelService,
    UnknownRequestError,
    load_service,
)
from modelserver.settings import Settings

pytestmark = pytest.mark.unit


def service_for(
    artifact: dict[str, Any], **settings: Any
) -> tuple[ModelService, CollectorRegistry]:
    registry = CollectorRegistry()
    config = Settings(
        model_name="m", model_uri=artifact["uri"], model_sha256=artifact["sha256"], **settings
    )
    return load_service(config, registry), registry


def v2(row: dict[str, Any], rows: int = 1) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": k,
                "datatype": "BYTES" if isinstance(v, str) else "FP64",
                "shape": [rows],
                "data": [v] * rows,
            }
            for k, v in row.items()
        ]
    }


@pytest.fixture(scope="module")
def wine(models: dict[str, dict[str, Any]]) -> tuple[ModelService, CollectorRegistry]:
    return service_for(models["wine-improved"])


def refusal(service: ModelService, payload: Any) -> InputError:
    with pytest.raises(InputError) as caught:
        service.decode_v2(payload, "r")
    return caught.value


def with_input(row: dict[str, Any], name: str, **changes: Any) -> dict[str, Any]:
    payload = v2(row)
    for tensor in payload["inputs"]:
        if tensor["name"] == name:
            tensor.update(changes)
    return payload


BAD = [
    ("not an object", lambda row: [1, 2], "JSON object"),
    ("no inputs", lambda row: {"inputs": []}, "non-empty list"),
    ("tensor not an object", lambda row: {"inputs": [3]}, "inputs[0]"),
    ("string for number", lambda row: with_input(row, "ash", data=["2.4"]), "'ash' row 0"),
    ("bool for number", lambda row: with_input(row, "ash", data=[True]), "expected a number"),
    ("NaN", lambda row: with_input(row, "hue", data=[math.nan]), "NaN"),
    ("infinity", lambda row: with_input(row, "hue", data=[math.inf]), "infinite"),
    ("null", lambda row: with_input(row, "hue", data=[None]), "missing (null)"),
    ("wrong datatype", lambda row: with_input(row, "hue", datatype="BYTES"), "datatype"),
    ("bad shape", lambda row: with_input(row, "hue", shape=[1, 2]), "shape"),
    ("shape vs data", lambda row: with_input(row, "hue", shape=[2]), "shape says 2"),
    ("ragged rows", lambda row: with_input(row, "hue", shape=[2], data=[1.0, 1.0]), "rows"),
    ("unknown feature", lambda row: {**v2(row), "inputs": [*v2(row)["inputs"],
        {"name": "colour", "datatype": "FP64", "shape": [1], "data": [1.0]}]}, "unknown feature"),
    ("duplicate", lambda row: {"inputs": v2(row)["inputs"] * 2}, "more than once"),
    ("unknown output", lambda row: {**v2(row), "outputs": [{"name": "shap"}]}, "unknown output"),
    ("huge int", lambda row: with_input(row, "hue", data=[10**400]), "too large"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "make", "says"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_refused_with_a_message_naming_the_problem(
    wine: tuple[ModelService, CollectorRegistry],
    wine_row: dict[str, float],
    case: str,
    make: Any,
    says: str,
) -> None:
    error = refusal(wine[0], make(dict(wine_row)))
    assert 400 <= error.status < 500
    assert says in str(error)


def test_too_many_rows_is_413(
    models: dict[str, dict[str, Any]], wine_row: dict[str, float]
) -> None:
    service, _ = service_for(models["wine-improved"], max_batch_rows=5)
    assert refusal(service, v2(wine_row, rows=6)).status == 413
    assert service.decode_v2(v2(wine_row, rows=5), "r").rows == 5


def test_missing_features_are_refused_and_counted(
    models: dict[str, dict[str, Any]], wine_row: dict[str, float]
) -> None:
    service, registry = service_for(models["wine-improved"])
    row = {k: v for k, v in wine_row.items() if k not in ("hue", "proline")}
    error = refusal(service, v2(row))
    assert "hue" in str(error)
    assert "proline" in str(error)
    refusal(service, with_input(wine_row, "hue", data=[None]))

    def missing(feature: str) -> float | None:
        return registry.get_sample_value(
            "modelserver_feature_missing_total",
            {"model_name": "m", "model_version": "0", "feature": feature},
        )

    assert missing("hue") == 2
    assert missing("proline") == 1
    assert missing("alcohol") == 0


def missing_counts(registry: CollectorRegistry, features: tuple[str, ...]) -> dict[str, float]:
    return {
        f: registry.get_sample_value(
            "modelserver_feature_missing_total",
            {"model_name": "m", "model_version": "0", "feature": f},
        )
        or 0.0
        for f in features
    }


def test_missing_features_are_counted_whichever_error_is_reported(
    models: dict[str, dict[str, Any]], wine_row: dict[str, float]
) -> None:
    service, registry = service_for(models["wine-improved"])
    watched = ("hue", "proline", "alcohol")
    # A renamed feature is unknown and missing at once: both are named, it counts as missing.
    renamed = {("colour_hue" if k == "hue" else k): v for k, v in wine_row.items()}
    error = refusal(service, v2(renamed))
    assert "unknown feature(s) colour_hue" in str(error)
    assert "missing feature(s) hue" in str(error)
    assert missing_counts(registry, watched) == {"hue": 1, "proline": 0, "alcohol": 0}
    # A bad shape on a present feature is reported, and the absent one still counted.
    no_proline = {k: v for k, v in wine_row.items() if k != "proline"}
    error = refusal(service, with_input(no_proline, "hue", shape=[1, 2]))
    assert "'hue' has shape" in str(error)
    assert missing_counts(registry, watched) == {"hue": 1, "proline": 1, "alcohol": 0}
    # So is an invalid id, and the V1 protocol's unknown-plus-missing rows.
    payload = {**v2(no_proline), "id": "two words"}
    assert "'id'" in str(refusal(service, payload))
    with pytest.raises(InputError, match="unknown feature"):
        service.decode_v1({"instances": [{**no_proline, "prolin": 1.0}]}, "r")
    assert missing_counts(registry, watched) == {"hue": 1, "proline": 3, "alcohol": 0}


GOOD_IDS = ["550e8400-e29b-41d4-a716-446655440000", "00-4bf92f35-01", "a", "x" * 200, "k=v/1:2"]
BAD_IDS = [
    ("newline", "a\nb", "U+000A, a control"),
    ("carriage return", "a\rb", "U+000D"),
    ("space", "a b", "U+0020, a space"),
    ("non-ASCII", "caf\u00e9", "U+00E9"),
    ("empty", "", "empty string"),
    ("too long", "x" * 201, "got 201 characters"),
    ("not a string", 17, "got int"),
]


@pytest.mark.parametrize("good", GOOD_IDS)
def test_usable_ids_are_kept(
    wine: tuple[ModelService, CollectorRegistry], wine_row: dict[str, float], good: str
) -> None:
    assert wine[0].decode_v2({**v2(wine_row), "id": good}, "r").request_id == good


@pytest.mark.parametrize(("case", "bad", "says"), BAD_IDS, ids=[b[0] for b in BAD_IDS])
def test_ids_that_cannot_be_echoed_in_a_header_are_refused(
    models: dict[str, dict[str, Any]], wine_row: dict[str, float], case: str, bad: Any, says: str
) -> None:
    service, _ = service_for(models["wine-improved"])
    error = refusal(service, {**v2(wine_row), "id": bad})
    assert (error.status, error.kind) == (400, "bad_id")
    assert "'id' must be 1 to 200 visible ASCII characters" in str(error)
    assert says in str(error)
    served = service.decode_v2(v2(wine_row), "fb-1")
    service.infer([served])
    with pytest.raises(InputError, match="feedback 'id' must be") as caught:
        service.score_feedback({"id": bad, "labels": ["class_0"]})
    assert says in str(caught.value)


def test_unseen_categories_are_served_and_counted(
    models: dict[str, dict[str, Any]], penguin_row: dict[str, Any]
) -> None:
    service, registry = service_for(models["penguins-improved"])
    row = {**penguin_row, "island": "Atlantis"}
    decoded = service.decode_v2(v2(row, rows=3), "r1")
    [result] = service.infer([decoded])
    assert len(result.labels) == 3
    assert (
        service.v2_response(decoded, service.v2_outputs(decoded, result))[0]["outputs"][0][
            "datatype"
        ]
        == "BYTES"
    )
    labels = {"model_name": "m", "model_version": "0", "feature": "island"}
    assert registry.get_sample_value("modelserver_feature_unseen_category_total", labels) == 3
    labels["feature"] = "sex"
    assert registry.get_sample_value("modelserver_feature_unseen_category_total", labels) == 0


def test_batched_inference_equals_one_request_at_a_time(
    models: dict[str, dict[str, Any]], wine_row: dict[str, float]
) -> None:
    service, _ = service_for(models["wine-improved"])
    rows = [{k: v * (1 + 0.1 * i) for k, v in wine_row.items()} for i in range(5)]
    decoded = [service.decode_v2(v2(r), f"r{i}") for i, r in enumerate(rows)]
    together = service.infer(decoded)
    alone = [service.infer([d])[0] for d in decoded]
    assert [t.labels.tolist() for t in together] == [a.labels.tolist() for a in alone]


def test_predict_proba_output_on_request(
    wine: tuple[ModelService, CollectorRegistry], wine_row: dict[str, float]
) -> None:
    service = wine[0]
    payload = {**v2(wine_row, rows=2), "outputs": [{"name": "predict"}, {"name": "predict_proba"}]}
    decoded = service.decode_v2(payload, "p")
    response = service.v2_response(
        decoded, service.v2_outputs(decoded, service.infer([decoded])[0])
    )[0]
    proba = response["outputs"][1]
    assert proba["shape"] == [2, 3]
    assert sum(proba["data"][:3]) == pytest.approx(1.0)
    json.dumps(response)  # plain JSON types only


def test_feedback_scores_predictions_and_reports_accuracy_after_the_minimum(
    models: dict[str, dict[str, Any]], wine_row: dict[str, float]
) -> None:
    service, registry = service_for(models["wine-improved"], feedback_min_samples=4)
    decoded = service.decode_v2(v2(wine_row, rows=2), "req-1")
    predicted = service.infer([decoded])[0].labels.tolist()
    assert service.score_feedback({"id": "req-1", "labels": predicted}) == {
        "id": "req-1",
        "correct": 2,
        "incorrect": 0,
    }
    service.evaluate()
    assert (
        registry.get_sample_value(
            "modelserver_feedback_accuracy", {"model_name": "m", "model_version": "0"}
        )
        is None
    )
    decoded = service.decode_v2(v2(wine_row, rows=2), "req-2")
    service.infer([decoded])
    service.score_feedback({"id": "req-2", "labels": ["class_0", "not-a-class"]})
    service.evaluate()
    base = {"model_name": "m", "model_version": "0"}
    # The second request's rows are the same wine; only the first label can match.
    correct = int(predicted[0] == "class_0")
    assert registry.get_sample_value("modelserver_feedback_accuracy", base) == (2 + correct) / 4
    with pytest.raises(UnknownRequestError, match="req-1"):
        service.score_feedback({"id": "req-1", "labels": predicted})  # already scored
    assert (
        registry.get_sample_value(
            "modelserver_feedback_total", {**base, "outcome": "unknown_request"}
        )
        == 2
    )
    with pytest.raises(InputError, match="labels"):
        service.score_feedback({"id": "req-3"})


def test_fault_injection_fails_exactly_the_configured_share(
    models: dict[str, dict[str, Any]], wine_row: dict[str, float]
) -> None:
    service, _ = service_for(models["wine-improved"], fault_error_rate=0.25)
    failures = 0
    for i in range(100):
        try:
            service.decode_v2(v2(wine_row), f"f{i}")
        except InjectedFaultError:
            failures += 1
    assert failures == 25
    # Invalid requests are still refused as such, not turned into 500s.
    assert refusal(service, {"inputs": []}).status == 400


def test_drift_gauges_appear_once_the_window_holds_enough(
    models: dict[str, dict[str, Any]], wine_row: dict[str, float]
) -> None:
    service, registry = service_for(models["wine-improved"], drift_window=50, drift_min_samples=10)
    base = {"model_name": "m", "model_version": "0"}
    service.infer([service.decode_v2(v2(wine_row, rows=9), "a")])
    service.evaluate()
    assert registry.get_sample_value("modelserver_drift_window_samples", base) == 9
    assert registry.get_sample_value("modelserver_prediction_drift_psi", base) is None
    assert (
        registry.get_sample_value("modelserver_feature_drift_psi", {**base, "feature": "hue"})
        is None
    )
    service.infer([service.decode_v2(v2(wine_row, rows=1), "b")])
    service.evaluate()
    assert (
        registry.get_sample_value("modelserver_feature_drift_psi", {**base, "feature": "hue"})
        is not None
    )
    assert registry.get_sample_value("modelserver_prediction_drift_psi", base) is not None


def test_model_info_names_the_artifact(
    models: dict[str, dict[str, Any]], wine: tuple[ModelService, CollectorRegistry]
) -> None:
    labels = {
        "model_name": "m",
        "model_version": "0",
        "artifact_sha256": models["wine-improved"]["sha256"],
        "revision": "",
    }
    assert wine[1].get_sample_value("modelserver_model_info", labels) == 1
