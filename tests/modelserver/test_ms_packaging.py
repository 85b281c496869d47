"""`modelrollout package`: a user's own pipeline and data become a servable, monitored package.

The pipelines are made here, the way a data scientist would in a notebook (on
DataFrames, with column names), not taken from modelserver.training; the data
is what installed packages ship (palmerpenguins, scikit-learn's diabetes).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import palmerpenguins
import pandas as pd
import pytest
import skops.io
from ms_helpers import CLI
from prometheus_client import CollectorRegistry
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import mean_absolute_error, mean_squared_error
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modelserver.packaging import Packaged, PackagingError, package, profile_of
from modelserver.service import ModelService, load_service
from modelserver.settings import Settings
from modelserver.tabular import TableError, infer_kinds

pytestmark = pytest.mark.unit

CATEGORICAL = ["island", "sex"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    frame = palmerpenguins.load_penguins().dropna().drop(columns=["year"])
    return frame.reset_index(drop=True)


@pytest.fixture(scope="module")
def penguin_pipeline(penguins: pd.DataFrame) -> Any:
    prepare = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), CATEGORICAL), remainder=StandardScaler()
    )
    pipeline = make_pipeline(prepare, LogisticRegression(max_iter=2000))
    return pipeline.fit(penguins.drop(columns="species"), penguins["species"])


@pytest.fixture(scope="module")
def diabetes() -> pd.DataFrame:
    return load_diabetes(as_frame=True).frame


@pytest.fixture(scope="module")
def diabetes_pipeline(diabetes: pd.DataFrame) -> Any:
    train = diabetes.iloc[:350]
    return make_pipeline(StandardScaler(), Ridge()).fit(
        train.drop(columns="target"), train["target"]
    )


@pytest.fixture(scope="module")
def packaged_penguins(
    tmp_path_factory: pytest.TempPathFactory, penguin_pipeline: Any, penguins: pd.DataFrame
) -> Packaged:
    out = tmp_path_factory.mktemp("penguins") / "pkg"
    return package(penguin_pipeline, penguins, "species", out, name="penguins")


@pytest.fixture(scope="module")
def packaged_diabetes(
    tmp_path_factory: pytest.TempPathFactory, diabetes_pipeline: Any, diabetes: pd.DataFrame
) -> Packaged:
    """A regressor from files: training CSV, held-out Parquet, the model as .skops."""
    where = tmp_path_factory.mktemp("diabetes")
    diabetes.iloc[:350].to_csv(where / "train.csv", index=False)
    diabetes.iloc[350:].to_parquet(where / "test.parquet", index=False)
    skops.io.dump(diabetes_pipeline, where / "ridge.skops")
    return package(
        where / "ridge.skops",
        where / "train.csv",
        "target",
        where / "pkg",
        test=where / "test.parquet",
    )


def service_of(packaged: Packaged, **settings: Any) -> tuple[ModelService, CollectorRegistry]:
    registry = CollectorRegistry()
    config = Settings(
        model_name="m",
        model_uri=packaged.artifact.as_uri(),
        model_sha256=packaged.sha256,
        **settings,
    )
    return load_service(config, registry), registry


def v2(frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": name,
                "datatype": "FP64" if pd.api.types.is_numeric_dtype(frame[name]) else "BYTES",
                "shape": [len(frame)],
                "data": [
                    float(v) if pd.api.types.is_numeric_dtype(frame[name]) else str(v)
                    for v in frame[name].tolist()
                ],
            }
            for name in frame.columns
        ]
    }


def serve(service: ModelService, rows: pd.DataFrame, request_id: str) -> list[Any]:
    decoded = service.decode_v2(v2(rows), request_id)
    [result] = service.infer([decoded])
    response, _ = service.v2_response(decoded, service.v2_outputs(decoded, result))
    return list(response["outputs"][0]["data"])


# -- the package ------------------------------------------------------------------------------


def test_a_classifier_from_a_dataframe_is_packaged_as_the_contract_says(
    packaged_penguins: Packaged, penguins: pd.DataFrame
) -> None:
    directory = packaged_penguins.directory
    assert sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*")) == [
        "data",
        "data/train.parquet",
        "model-card.json",
        "model.skops",
        "model.skops.profile.json",
        "model.skops.sha256",
    ]
    digest = sha256(directory / "model.skops")
    assert packaged_penguins.sha256 == digest
    assert (directory / "model.skops.sha256").read_text() == f"{digest}  model.skops\n"
    card = json.loads((directory / "model-card.json").read_text())
    assert card == packaged_penguins.card
    assert card["schemaVersion"] == 1 and card["name"] == "penguins"
    assert card["task"] == "classification"
    assert card["artifact"] == {"file": "model.skops", "format": "skops", "sha256": digest}
    assert [(i["name"], i["type"]) for i in card["inputs"]] == [
        ("island", "categorical"),
        ("bill_length_mm", "numeric"),
        ("bill_depth_mm", "numeric"),
        ("flipper_length_mm", "numeric"),
        ("body_mass_g", "numeric"),
        ("sex", "categorical"),
    ]
    assert card["outputs"] == {
        "prediction": {"type": "categorical", "classes": ["Adelie", "Chinstrap", "Gentoo"]},
        "probabilities": True,
    }
    assert set(card["metrics"]) == {"accuracy", "f1_macro"}
    assert 0.9 < card["metrics"]["accuracy"] <= 1.0
    assert card["evaluation"] == {"method": "holdout", "rows": 67, "fraction": 0.2}
    assert card["dataset"]["file"] == "data/train.parquet"
    assert card["dataset"]["sha256"] == sha256(directory / "data/train.parquet")
    assert card["dataset"]["rows"] == len(penguins) and card["dataset"]["target"] == "species"
    assert {"python", "scikit-learn", "skops", "pandas"} <= set(card["libraries"])
    pd.testing.assert_frame_equal(pd.read_parquet(directory / "data/train.parquet"), penguins)


def test_the_profile_describes_the_training_data_and_the_predictions(
    packaged_penguins: Packaged, penguins: pd.DataFrame
) -> None:
    profile = profile_of(packaged_penguins.directory)
    assert profile.task == "classification" and profile.n_samples == len(penguins)
    island = profile.features[0]
    assert island.kind == "categorical"
    assert island.categories == ("Biscoe", "Dream", "Torgersen")
    shares = penguins["island"].value_counts(normalize=True).sort_index()
    np.testing.assert_allclose(island.shares, shares.to_numpy())
    assert profile.prediction.categories == ("Adelie", "Chinstrap", "Gentoo")


def test_a_pipeline_fitted_on_a_dataframe_is_served_a_dataframe(
    packaged_penguins: Packaged, penguin_pipeline: Any, penguins: pd.DataFrame
) -> None:
    service, _ = service_of(packaged_penguins)
    rows = penguins.drop(columns="species").iloc[:40]
    assert serve(service, rows, "r1") == penguin_pipeline.predict(rows).tolist()


def test_a_regressor_from_csv_is_scored_on_its_parquet_test_data(
    packaged_diabetes: Packaged, diabetes_pipeline: Any, diabetes: pd.DataFrame
) -> None:
    card = packaged_diabetes.card
    directory = packaged_diabetes.directory
    assert card["task"] == "regression"
    assert card["outputs"] == {"prediction": {"type": "numeric"}, "probabilities": False}
    test = diabetes.iloc[350:]
    predicted = diabetes_pipeline.predict(test.drop(columns="target"))
    assert card["metrics"]["mae"] == pytest.approx(mean_absolute_error(test.target, predicted))
    rmse = np.sqrt(mean_squared_error(test.target, predicted))
    assert card["metrics"]["rmse"] == pytest.approx(rmse)
    assert card["evaluation"] == {
        "method": "test",
        "rows": len(test),
        "fraction": None,
        "file": "data/test.parquet",
    }
    assert card["dataset"]["format"] == "csv" and card["dataset"]["rows"] == 350
    source = directory.parent
    assert (directory / "data/train.csv").read_bytes() == (source / "train.csv").read_bytes()
    assert (directory / "data/test.parquet").read_bytes() == (source / "test.parquet").read_bytes()
    assert (directory / "model.skops").read_bytes() == (source / "ridge.skops").read_bytes()
    profile = profile_of(directory)
    assert profile.task == "regression" and profile.classes == ()
    assert profile.prediction.kind == "numeric" and len(profile.prediction.edges) == 9


def test_feature_kinds_are_inferred_from_dtypes_and_overridable() -> None:
    frame = pd.DataFrame(
        {
            "amount": [1.5, 2.0, 3.25],
            "code": [1, 2, 1],  # low-cardinality integer codes stay numeric
            "flag": [True, False, True],
            "city": ["a", "b", "a"],
        }
    )
    assert infer_kinds(frame) == {
        "amount": "numeric",
        "code": "numeric",
        "flag": "numeric",
        "city": "categorical",
    }
    assert infer_kinds(frame, {"code": "categorical"})["code"] == "categorical"
    with pytest.raises(TableError, match=r"'nope', which is not a feature column.*amount"):
        infer_kinds(frame, {"nope": "numeric"})
    with pytest.raises(TableError, match=r"'city' holds .* cannot be numeric"):
        infer_kinds(frame, {"city": "numeric"})
    with pytest.raises(TableError, match="use numeric or categorical"):
        infer_kinds(frame, {"code": "ordinal"})


def test_a_categorical_override_changes_the_profile(tmp_path: Path) -> None:
    frame = pd.DataFrame({"code": [1, 2, 3, 1] * 10, "y": [0.5, 1.0, 1.5, 0.5] * 10})
    frame["code"] = frame["code"].astype(str)  # fitted on strings, so served as strings
    pipeline = make_pipeline(OneHotEncoder(), Ridge()).fit(frame[["code"]], frame["y"])
    packaged = package(
        pipeline, frame, "y", tmp_path / "pkg", feature_types={"code": "categorical"}
    )
    [code] = profile_of(packaged.directory).features
    assert code.kind == "categorical" and code.categories == ("1", "2", "3")


# -- refusals: a clear message, nothing written -----------------------------------------------


def refused(tmp_path: Path, match: str, model: Any, data: Any, target: str, **kw: Any) -> None:
    out = tmp_path / "out" / "pkg"
    with pytest.raises(PackagingError, match=match):
        package(model, data, target, out, **kw)
    assert not out.exists()
    leftovers = list(out.parent.iterdir()) if out.parent.exists() else []
    assert leftovers == [], f"left behind: {leftovers}"


def test_a_missing_target_is_named_with_the_columns(
    tmp_path: Path, penguin_pipeline: Any, penguins: pd.DataFrame
) -> None:
    refused(
        tmp_path,
        r"target column 'label' is not in .*island, bill_length_mm",
        penguin_pipeline,
        penguins,
        "label",
    )


def test_a_feature_with_only_nulls_is_named(
    tmp_path: Path, penguin_pipeline: Any, penguins: pd.DataFrame
) -> None:
    frame = penguins.assign(notes=None)
    refused(tmp_path, r"feature\(s\) notes .* only nulls", penguin_pipeline, frame, "species")


def test_a_pipeline_that_cannot_predict_on_the_data_shows_its_error(
    tmp_path: Path, penguin_pipeline: Any, penguins: pd.DataFrame
) -> None:
    frame = penguins.rename(columns={"bill_length_mm": "bill_mm"})
    refused(tmp_path, "do not belong together|cannot predict", penguin_pipeline, frame, "species")
    other = make_pipeline(StandardScaler(), Ridge()).fit(np.ones((5, 3)), np.arange(5.0))
    refused(
        tmp_path,
        r"cannot predict on the data DataFrame: ValueError: X has 6 features",
        other,
        penguins.drop(columns=["island", "sex"]).assign(c=1.0, d=2.0),
        "species",
        task="classification",
    )


def test_disallowed_artifact_types_are_refused(
    tmp_path: Path, penguin_pipeline: Any, penguins: pd.DataFrame
) -> None:
    (tmp_path / "model.h5").write_bytes(b"\x89HDF")
    refused(
        tmp_path,
        r"artifact type \.h5 of model\.h5 is not allowed",
        tmp_path / "model.h5",
        penguins,
        "species",
    )
    (tmp_path / "model.joblib").write_bytes(pickle.dumps(penguin_pipeline))
    refused(tmp_path, "--allow-pickle", tmp_path / "model.joblib", penguins, "species")
    (tmp_path / "sneaky.skops").write_bytes(pickle.dumps(penguin_pipeline))
    refused(tmp_path, "content is a pickle", tmp_path / "sneaky.skops", penguins, "species")


def test_a_pickle_is_packaged_when_allowed(
    tmp_path: Path, penguin_pipeline: Any, penguins: pd.DataFrame
) -> None:
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(penguin_pipeline))
    packaged = package(
        tmp_path / "model.pkl", penguins, "species", tmp_path / "pkg", allow_pickle=True
    )
    assert (
        packaged.artifact.name == "model.joblib" and packaged.card["artifact"]["format"] == "joblib"
    )


def test_a_regressor_needs_a_numeric_target_and_data_needs_rows(
    tmp_path: Path, diabetes_pipeline: Any, diabetes: pd.DataFrame
) -> None:
    words = diabetes.assign(target=np.where(diabetes.target > 140, "high", "low"))
    refused(
        tmp_path,
        "regressor but target column 'target' .* not numbers",
        diabetes_pipeline,
        words,
        "target",
    )
    refused(tmp_path, "has no rows", diabetes_pipeline, diabetes.iloc[:0], "target")
    (tmp_path / "empty.csv").write_text(",".join(diabetes.columns) + "\n")
    refused(tmp_path, "empty.csv has no rows", diabetes_pipeline, tmp_path / "empty.csv", "target")


def test_untrusted_skops_types_are_named_with_the_flag(
    tmp_path: Path, diabetes: pd.DataFrame
) -> None:
    import operator

    from sklearn.preprocessing import FunctionTransformer

    pipeline = make_pipeline(FunctionTransformer(operator.neg), Ridge())
    pipeline.fit(diabetes.drop(columns="target"), diabetes.target)
    skops.io.dump(pipeline, tmp_path / "m.skops")
    refused(tmp_path, r"_operator.neg.*--trusted TYPE", tmp_path / "m.skops", diabetes, "target")
    packaged = package(
        tmp_path / "m.skops", diabetes, "target", tmp_path / "ok", trusted=["_operator.neg"]
    )
    assert packaged.card["task"] == "regression"


def test_an_existing_directory_is_not_overwritten(
    packaged_penguins: Packaged, penguin_pipeline: Any, penguins: pd.DataFrame
) -> None:
    before = sha256(packaged_penguins.card_path)
    with pytest.raises(PackagingError, match="already exists"):
        package(penguin_pipeline, penguins, "species", packaged_penguins.directory)
    assert sha256(packaged_penguins.card_path) == before


# -- serving what was packaged ----------------------------------------------------------------


def test_a_regressor_serves_numeric_drift_and_live_error(
    packaged_diabetes: Packaged, diabetes_pipeline: Any, diabetes: pd.DataFrame
) -> None:
    service, registry = service_of(
        packaged_diabetes, feedback_min_samples=20, drift_window=90, drift_min_samples=50
    )
    base = {"model_name": "m", "model_version": "0"}
    rows = diabetes.iloc[350:].drop(columns="target")
    truth = diabetes.iloc[350:]["target"].tolist()
    predicted = serve(service, rows, "r1")
    np.testing.assert_allclose(predicted, diabetes_pipeline.predict(rows))
    assert service.metadata()["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
    answer = service.score_feedback({"id": "r1", "labels": truth})
    errors = np.abs(np.asarray(truth) - np.asarray(predicted))
    assert answer == {
        "id": "r1",
        "scored": len(truth),
        "mean_absolute_error": pytest.approx(errors.mean()),
    }
    service.evaluate()
    assert registry.get_sample_value("modelserver_feedback_mae", base) == pytest.approx(
        errors.mean()
    )
    rmse = registry.get_sample_value("modelserver_feedback_rmse", base)
    assert rmse == pytest.approx(np.sqrt(np.mean(errors**2)))
    assert registry.get_sample_value(
        "modelserver_feedback_absolute_error_sum", base
    ) == pytest.approx(errors.sum())
    assert registry.get_sample_value("modelserver_feedback_squared_error_count", base) == len(truth)
    assert registry.get_sample_value(
        "modelserver_feedback_total", {**base, "outcome": "scored"}
    ) == len(truth)
    # Like training, predictions hardly drift; shifted +3 standard deviations (the window
    # then holds only shifted rows), they do.
    calm = registry.get_sample_value("modelserver_prediction_drift_psi", base)
    assert calm is not None and calm < 0.25
    serve(service, rows + 3 * rows.std(), "r2")
    service.evaluate()
    drifted = registry.get_sample_value("modelserver_prediction_drift_psi", base)
    assert drifted is not None and drifted > 1.0


def test_regression_feedback_must_be_numbers(
    packaged_diabetes: Packaged, diabetes: pd.DataFrame
) -> None:
    from modelserver.inputs import InputError

    service, _ = service_of(packaged_diabetes)
    serve(service, diabetes.drop(columns="target").iloc[:2], "r1")
    with pytest.raises(InputError, match="finite number"):
        service.score_feedback({"id": "r1", "labels": ["high", 3.0]})


def test_the_penguins_example_exports_and_serves_as_onnx(
    tmp_path: Path, penguins: pd.DataFrame
) -> None:
    from modelserver.training import train

    onnx = train("penguins", "improved", tmp_path, fmt="onnx")
    reference = train("penguins", "improved", tmp_path, fmt="skops")
    served = {}
    for trained in (onnx, reference):
        service, _ = service_of(
            Packaged(
                trained.path.parent,
                trained.path,
                trained.sha256,
                trained.profile_path,
                trained.path,
                {},
            )
        )
        served[trained.format] = serve(service, penguins.drop(columns="species").iloc[:60], "r")
    assert served["onnx"] == served["skops"]


def test_a_users_onnx_pipeline_with_string_inputs_is_packaged_and_served(
    tmp_path: Path, penguin_pipeline: Any, penguins: pd.DataFrame
) -> None:
    from modelserver.training import export_onnx

    features = penguins.drop(columns="species")
    kinds = [(c, "categorical" if c in CATEGORICAL else "numeric") for c in features.columns]
    export_onnx(penguin_pipeline, kinds, tmp_path / "penguins.onnx")
    packaged = package(tmp_path / "penguins.onnx", penguins, "species", tmp_path / "pkg")
    assert packaged.card["artifact"]["format"] == "onnx"
    assert packaged.card["task"] == "classification"
    assert [i["type"] for i in packaged.card["inputs"]] == [k for _, k in kinds]
    service, _ = service_of(packaged)
    rows = features.iloc[:50]
    assert serve(service, rows, "r") == penguin_pipeline.predict(rows).tolist()


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_lightgbm_through_skops_is_packaged_and_served(
    tmp_path: Path, kind: str, penguins: pd.DataFrame, diabetes: pd.DataFrame
) -> None:
    from lightgbm import LGBMClassifier, LGBMRegressor

    if kind == "classifier":
        frame, target = penguins, "species"
        prepare = make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), CATEGORICAL), remainder="passthrough"
        )
        model = make_pipeline(prepare, LGBMClassifier(n_estimators=30, verbose=-1))
    else:
        frame, target = diabetes, "target"
        model = make_pipeline(LGBMRegressor(n_estimators=30, verbose=-1))
    features = frame.drop(columns=target)
    model.fit(features, frame[target])
    packaged = package(model, frame, target, tmp_path / "pkg")
    assert packaged.card["task"] == ("classification" if kind == "classifier" else "regression")
    assert "lightgbm" in packaged.card["libraries"]
    service, _ = service_of(packaged)
    rows = features.iloc[:30]
    served = serve(service, rows, "r")
    if kind == "classifier":
        assert served == model.predict(rows).tolist()
    else:
        np.testing.assert_allclose(served, model.predict(rows))
    assert profile_of(packaged.directory).n_samples == len(frame)


# -- the command ------------------------------------------------------------------------------


def test_the_cli_prints_the_package_and_refuses_bad_input_with_exit_2(
    tmp_path: Path, diabetes_pipeline: Any, diabetes: pd.DataFrame
) -> None:
    diabetes.to_csv(tmp_path / "diabetes.csv", index=False)
    skops.io.dump(diabetes_pipeline, tmp_path / "ridge.skops")
    base = [
        CLI,
        "package",
        "--model",
        str(tmp_path / "ridge.skops"),
        "--data",
        str(tmp_path / "diabetes.csv"),
    ]
    done = subprocess.run(
        [*base, "--target", "target", "--out", str(tmp_path / "pkg"), "--holdout", "0.3"],
        capture_output=True,
        check=True,
        timeout=120,
    )
    printed = json.loads(done.stdout)
    assert printed["sha256"] == sha256(tmp_path / "pkg" / "model.skops")
    assert printed["uri"] == (tmp_path / "pkg" / "model.skops").resolve().as_uri()
    assert printed["evaluation"] == {"method": "holdout", "rows": 133, "fraction": 0.3}
    assert set(printed["metrics"]) == {"mae", "rmse"}
    failed = subprocess.run(
        [*base, "--target", "y", "--out", str(tmp_path / "bad")],
        capture_output=True,
        timeout=120,
    )
    assert failed.returncode == 2 and failed.stdout == b""
    last = failed.stderr.decode().splitlines()[-1]
    assert last.startswith("modelrollout package: target column 'y' is not in diabetes.csv; ")
    assert "its columns are age, sex, bmi" in last
    assert not (tmp_path / "bad").exists()


def test_profiles_leave_nulls_out_and_bin_a_regressors_predictions() -> None:
    from modelserver.profile import ReferenceProfile, build_reference, feature_profiles

    columns = [
        ("amount", "numeric", [1.0, np.nan, 3.0, 4.0]),
        ("city", "categorical", ["a", None, "b", "a"]),
    ]
    amount, city = feature_profiles(columns, bins=2)
    assert amount.edges == (3.0,) and amount.shares == pytest.approx((1 / 3, 2 / 3))
    assert city.categories == ("a", "b") and city.shares == pytest.approx((2 / 3, 1 / 3))
    profile = build_reference((amount, city), [10.0, 20.0, 30.0, 40.0], "regression", [], 4)
    assert profile.prediction.kind == "numeric"
    assert profile.prediction.edges == (17.5, 25.0, 32.5)  # quartiles of the predictions
    assert ReferenceProfile.from_json(profile.to_json()) == profile


def test_the_openapi_document_of_a_regressor_asks_for_numeric_labels(
    packaged_diabetes: Packaged,
) -> None:
    from modelserver.openapi import openapi_document

    service, _ = service_of(packaged_diabetes)
    schemas = openapi_document(service)["components"]["schemas"]
    assert schemas["FeedbackRequest"]["properties"]["labels"]["items"] == {"type": "number"}
    assert schemas["FeedbackResponse"]["required"] == ["id", "scored", "mean_absolute_error"]
