"""Packaging a user's fitted pipeline with its data: artifact, digest, profile, model card.

`modelrollout train` only makes the bundled demo models; this is how any
scikit-learn-compatible pipeline (skops, ONNX, or pickle/joblib when allowed),
fitted anywhere, becomes something the reference server serves and monitors.
It writes one directory (README: "Bring your own model"):

    DIR/model.<format>               the artifact (skops | onnx | joblib)
    DIR/model.<format>.sha256        "<hex>  model.<format>"
    DIR/model.<format>.profile.json  the reference profile drift is measured against
    DIR/model-card.json              inputs, outputs, held-out metrics, data digest, libraries
    DIR/data/<file>                  the training data (and --test data) byte for byte

Every check runs before the directory exists: the work happens in a staging
directory beside it, renamed into place only once complete, so a refusal (a
missing target, a feature with only nulls, a pipeline that cannot predict on
the data, a disallowed artifact type) leaves nothing behind. Predictions are
made through the server's own loading and input path (modelserver.artifact,
`tabular.served_matrix`), so the profile and metrics describe what will be
served, not what a notebook saw.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from modelserver import artifact, card
from modelserver.profile import Kind, ReferenceProfile, build_reference, feature_profiles
from modelserver.tabular import (
    TableError,
    data_format,
    first_line,
    infer_kinds,
    read_table,
    served_matrix,
)

if TYPE_CHECKING:
    import pandas as pd

# Artifact file suffix -> the packaged format (and so `model.<format>`).
ARTIFACT_FORMATS = {".skops": "skops", ".onnx": "onnx"} | dict.fromkeys(
    (".joblib", ".pkl", ".pickle"), "joblib"
)
TASKS = ("classification", "regression")
CARD_FILE = "model-card.json"
DATA_DIR = "data"


class PackagingError(ValueError):
    """The model or data cannot be packaged; the message names the problem."""


@dataclass(frozen=True)
class Packaged:
    directory: Path
    artifact: Path
    sha256: str
    profile_path: Path
    card_path: Path
    card: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """What `modelrollout package` prints: paths, digest and the card's summary."""
        return {
            "directory": str(self.directory),
            "artifact": str(self.artifact),
            "uri": self.artifact.resolve().as_uri(),
            "sha256": self.sha256,
            "profile": str(self.profile_path),
            "card": str(self.card_path),
            "task": self.card["task"],
            "inputs": len(self.card["inputs"]),
            "metrics": self.card["metrics"],
            "evaluation": self.card["evaluation"],
            "dataset": {k: self.card["dataset"][k] for k in ("file", "sha256", "rows")},
        }


@dataclass(frozen=True)
class _Table:
    frame: pd.DataFrame
    source: Path | None  # None: a DataFrame handed in
    label: str  # how messages name it


def package(
    model: str | Path | object,
    data: str | Path | pd.DataFrame,
    target: str,
    out: str | Path,
    *,
    holdout: float | None = 0.2,
    test: str | Path | pd.DataFrame | None = None,
    allow_pickle: bool = False,
    feature_types: Mapping[str, str] | None = None,
    name: str | None = None,
    bins: int = 10,
    seed: int = 0,
    trusted: Sequence[str] = (),
    task: str | None = None,
    retraining: card.Retraining | None = None,
) -> Packaged:
    """Package a fitted pipeline (a file, or the estimator object itself: saved as skops)
    and its training data (a .csv/.parquet file or a DataFrame) into `out`.

    The features are every column but `target`, in the data's order. Metrics come
    from `test` when given (preferred: rows the model never saw), else from a
    seeded `holdout` share of `data`, which is honest only if the model was fitted
    without those rows. `feature_types` overrides inferred kinds (column ->
    "numeric" | "categorical"); `trusted` lists extra skops types to load; `task`
    overrides the inferred "classification" | "regression". `retraining` (set by
    modelserver.retraining) records in the card how the model beat its predecessor.
    """
    directory = Path(out)
    if directory.exists():
        raise PackagingError(f"{directory} already exists; package into a new directory")
    if task is not None and task not in TASKS:
        raise PackagingError(f"task {task!r} is not one of {', '.join(TASKS)}")
    if test is None and (holdout is None or not 0.0 < holdout < 1.0):
        raise PackagingError(
            f"holdout must be a fraction between 0 and 1 (got {holdout}), or give test data"
        )
    if bins < 2:
        raise PackagingError(f"bins must be at least 2 (got {bins})")
    try:
        train = _table(data, "data")
        evaluation = _table(test, "test data") if test is not None else None
        features = _feature_columns(train, target)
        if evaluation is not None:
            _feature_columns(evaluation, target, expected=features)
        kinds = infer_kinds(train.frame[features], feature_types)
    except TableError as exc:
        raise PackagingError(str(exc)) from None
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    # mkdtemp makes it private (0700); the package is an ordinary directory.
    staging.chmod(0o755)
    try:
        packaged = _build(
            staging,
            directory,
            _Inputs(model, train, evaluation, target, kinds, feature_types or {}),
            _Options(holdout, allow_pickle, name, bins, seed, tuple(trusted), task, retraining),
        )
        # Atomic on one filesystem, and refused if `out` appeared meanwhile.
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return packaged


@dataclass(frozen=True)
class _Inputs:
    model: object
    train: _Table
    test: _Table | None
    target: str
    kinds: dict[str, Kind]
    overrides: Mapping[str, str]


@dataclass(frozen=True)
class _Options:
    holdout: float | None
    allow_pickle: bool
    name: str | None
    bins: int
    seed: int
    trusted: tuple[str, ...]
    task: str | None
    retraining: card.Retraining | None = None


def _build(staging: Path, directory: Path, given: _Inputs, options: _Options) -> Packaged:
    artifact_path = _stage_artifact(given.model, staging, options.allow_pickle)
    fmt = ARTIFACT_FORMATS[artifact_path.suffix]
    served = _load(artifact_path, options.trusted)
    kinds = _onnx_kinds(served, given.kinds, given.overrides) if fmt == "onnx" else given.kinds
    features = list(kinds)
    task = options.task or _infer_task(served)
    frame = given.train.frame
    _check_target(given.train, given.target, task)
    if given.test is not None:
        _check_target(given.test, given.target, task)

    columns = [(n, kinds[n], frame[n].to_numpy()) for n in features]
    profiles = feature_profiles(columns, options.bins)
    try:
        served.bind(profiles)
    except artifact.ArtifactError as exc:
        raise PackagingError(str(exc)) from None
    predictions = _predict(served, frame[features], kinds, given.train.label)
    _check_served_like_fitted(served, frame[features], predictions, given.train.label)
    truth = frame[given.target].to_numpy()
    classes = _classes(served, truth, predictions) if task == "classification" else []
    profile = build_reference(profiles, predictions, task, classes, options.bins)

    if given.test is not None:
        test_frame = given.test.frame
        held_truth = test_frame[given.target].to_numpy()
        held_predicted = _predict(served, test_frame[features], kinds, given.test.label)
        evaluation = card.Evaluation("test", len(test_frame), None)
    else:
        from sklearn.model_selection import train_test_split

        assert options.holdout is not None
        _, held = train_test_split(
            np.arange(len(frame)), test_size=options.holdout, random_state=options.seed
        )
        held_truth, held_predicted = truth[held], predictions[held]
        evaluation = card.Evaluation("holdout", len(held), options.holdout)

    data_dir = staging / DATA_DIR
    data_dir.mkdir()
    dataset_file, dataset_format = _stage_data(given.train, data_dir)
    if given.test is not None:
        test_file, _ = _stage_data(given.test, data_dir, avoid=dataset_file.name)
        evaluation = card.Evaluation("test", evaluation.rows, None, f"{DATA_DIR}/{test_file.name}")

    digest = artifact.write_sha256_file(artifact_path)
    name = artifact_path.name
    profile.save(staging / f"{name}.profile.json")
    document = card.model_card(
        name=options.name,
        task=task,
        artifact_file=name,
        artifact_format=fmt,
        artifact_sha256=digest,
        inputs=[card.Input(n, kinds[n], str(frame[n].dtype)) for n in features],
        classes=classes,
        probabilities=_has_probabilities(served, frame[features].head(1), kinds),
        scores=card.metrics(task, held_truth, held_predicted),
        evaluation=evaluation,
        dataset={
            "file": f"{DATA_DIR}/{dataset_file.name}",
            "format": dataset_format,
            "sha256": artifact.sha256_of(dataset_file),
            "rows": len(frame),
            "target": given.target,
        },
        retraining=options.retraining,
    )
    (staging / CARD_FILE).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return Packaged(
        directory=directory,
        artifact=directory / name,
        sha256=digest,
        profile_path=directory / f"{name}.profile.json",
        card_path=directory / CARD_FILE,
        card=document,
    )


# -- the data ---------------------------------------------------------------------------------


def _table(data: str | Path | pd.DataFrame, label: str) -> _Table:
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        if data.empty:
            raise TableError(f"the {label} DataFrame has no rows")
        return _Table(data.reset_index(drop=True), None, f"the {label} DataFrame")
    path = Path(data)
    return _Table(read_table(path), path, path.name)


def _feature_columns(
    table: _Table, target: str, expected: Sequence[str] | None = None
) -> list[str]:
    frame = table.frame
    names = [str(c) for c in frame.columns]
    if names != list(frame.columns):
        raise TableError(f"{table.label}: column names must be strings (got {list(frame.columns)})")
    if target not in names:
        raise TableError(
            f"target column {target!r} is not in {table.label}; its columns are {', '.join(names)}"
        )
    features = [n for n in names if n != target]
    if not features:
        raise TableError(f"{table.label} has no feature columns besides the target {target!r}")
    if expected is not None:
        missing = [n for n in expected if n not in features]
        if missing:
            raise TableError(f"{table.label} lacks feature column(s) {', '.join(missing)}")
        return list(expected)
    empty = [n for n in features if frame[n].isna().all()]
    if empty:
        raise TableError(
            f"feature(s) {', '.join(empty)} in {table.label} hold only nulls: nothing to "
            "profile or predict from; drop the column(s) before fitting"
        )
    return features


def _check_target(table: _Table, target: str, task: str) -> None:
    from pandas.api import types

    column = table.frame[target]
    nulls = int(column.isna().sum())
    if nulls:
        raise PackagingError(
            f"target column {target!r} in {table.label} has {nulls} null value(s); "
            "drop those rows (they cannot be scored)"
        )
    if task == "regression" and (types.is_bool_dtype(column) or not types.is_numeric_dtype(column)):
        raise PackagingError(
            f"the model is a regressor but target column {target!r} in {table.label} holds "
            f"{column.dtype} values, not numbers (a classifier? pass task='classification')"
        )


def _stage_data(table: _Table, data_dir: Path, avoid: str | None = None) -> tuple[Path, str]:
    """The table's file under data/, byte for byte; a DataFrame as Parquet (CSV without pyarrow)."""
    if table.source is not None:
        if table.source.name == avoid:
            raise PackagingError(
                f"the test file is named like the training file ({avoid}); rename one"
            )
        staged = data_dir / table.source.name
        shutil.copyfile(table.source, staged)
        return staged, data_format(staged)
    stem = "test" if avoid else "train"
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        staged = data_dir / f"{stem}.csv"
        table.frame.to_csv(staged, index=False)
        return staged, "csv"
    staged = data_dir / f"{stem}.parquet"
    table.frame.to_parquet(staged, index=False)
    return staged, "parquet"


# -- the model --------------------------------------------------------------------------------


def _stage_artifact(model: object, staging: Path, allow_pickle: bool) -> Path:
    if not isinstance(model, str | os.PathLike):
        if not hasattr(model, "predict"):
            raise PackagingError(
                f"model is a {type(model).__name__}: pass a fitted estimator or a file path"
            )
        import skops.io

        staged = staging / "model.skops"
        try:
            skops.io.dump(model, staged)
        except Exception as exc:
            raise PackagingError(f"cannot save the model as skops: {first_line(exc)}") from None
        return staged
    source = Path(model)
    fmt = ARTIFACT_FORMATS.get(source.suffix.lower())
    if fmt is None:
        raise PackagingError(
            f"artifact type {source.suffix or '(none)'} of {source.name} is not allowed: use "
            ".skops (skops.io.dump), .onnx, or .joblib/.pkl with --allow-pickle"
        )
    if fmt == "joblib" and not allow_pickle:
        raise PackagingError(
            f"refusing {source.name}: pickle/joblib files run arbitrary code when loaded. Save "
            "it with skops.io.dump (or as ONNX), or pass --allow-pickle (allow_pickle=True) "
            "if you trust where it came from; the server then needs MODELSERVER_ALLOW_PICKLE"
        )
    if not source.is_file():
        raise PackagingError(f"model file {source} does not exist or is not a file")
    staged = staging / f"model.{fmt}"
    shutil.copyfile(source, staged)
    try:
        artifact.inspect(str(staged), "", allow_pickle=True)
    except artifact.ArtifactError as exc:
        raise PackagingError(str(exc).replace(staged.name, source.name)) from None
    return staged


def _load(path: Path, trusted: tuple[str, ...]) -> artifact.Model:
    try:
        if path.suffix == ".skops":
            return artifact.SklearnModel(
                artifact.load_skops(
                    path, trusted, "Pass each with --trusted TYPE (trusted=[...] in Python)"
                )
            )
        if path.suffix == ".onnx":
            return artifact.OnnxModel(path)
        import joblib

        return artifact.SklearnModel(joblib.load(path))
    except artifact.ArtifactError as exc:
        raise PackagingError(str(exc)) from None


def _infer_task(model: artifact.Model) -> str:
    if isinstance(model, artifact.OnnxModel):
        label = next(iter(model.output_types.values()), "")
        classifier = len(model.output_types) >= 2 and label in ("tensor(string)", "tensor(int64)")
        return "classification" if classifier else "regression"
    from sklearn.base import is_classifier

    estimator = getattr(model, "estimator", None)
    classifier = is_classifier(estimator) or hasattr(estimator, "classes_")
    return "classification" if classifier else "regression"


def _onnx_kinds(
    model: artifact.Model, kinds: dict[str, Kind], overrides: Mapping[str, str]
) -> dict[str, Kind]:
    """The feature kinds an ONNX graph's inputs fix: string tensors are categorical."""
    assert isinstance(model, artifact.OnnxModel)
    if not model.per_column:
        if model.n_features is not None and model.n_features != len(kinds):
            raise PackagingError(
                f"the ONNX graph takes {model.n_features} features but the data has "
                f"{len(kinds)} besides the target: {', '.join(kinds)}"
            )
        return kinds
    inputs = model.input_types
    if sorted(inputs) != sorted(kinds):
        raise PackagingError(
            f"the ONNX graph's inputs are {', '.join(inputs)} but the data's feature columns "
            f"are {', '.join(kinds)}; name the graph's inputs after the columns"
        )
    fixed: dict[str, Kind] = {
        n: "categorical" if inputs[n] == "tensor(string)" else "numeric" for n in kinds
    }
    for n, kind in overrides.items():
        if fixed.get(n) != kind:
            raise PackagingError(
                f"feature type {kind} given for {n!r}, but the ONNX input is {inputs.get(n)}"
            )
    return fixed


def _predict(
    model: artifact.Model, frame: pd.DataFrame, kinds: Mapping[str, Kind], label: str
) -> npt.NDArray[Any]:
    try:
        predicted = model.predict(served_matrix(frame, kinds))
    except Exception as exc:
        raise PackagingError(
            f"the pipeline cannot predict on {label}: {type(exc).__name__}: {first_line(exc)}"
        ) from None
    if predicted.shape != (len(frame),):
        raise PackagingError(
            f"the pipeline returned {predicted.shape} predictions for {len(frame)} rows of {label}"
        )
    return predicted


def _check_served_like_fitted(
    model: artifact.Model, frame: pd.DataFrame, served: npt.NDArray[Any], label: str
) -> None:
    """Refuse when what the server would predict differs from the pipeline on the
    user's own DataFrame: a column kind that does not match what it was fitted on
    (integer codes made categorical arrive as strings) would otherwise be served
    silently wrong."""
    if not isinstance(model, artifact.SklearnModel):
        return
    given = frame if model.fitted_columns is not None else frame.to_numpy()
    try:
        direct = np.asarray(model.estimator.predict(given))
    except Exception:
        return  # fitted on something else than this frame; the served path worked
    if direct.shape != served.shape:
        return
    if np.issubdtype(direct.dtype, np.number) and np.issubdtype(served.dtype, np.number):
        same = np.isclose(direct.astype(float), served.astype(float), equal_nan=True)
    else:
        same = direct.astype(str) == served.astype(str)
    differ = int((~same).sum())
    if differ:
        raise PackagingError(
            f"served the way the server feeds it, the pipeline predicts differently on {differ} "
            f"of {len(served)} rows of {label}: a feature's type does not match what it was "
            "fitted on (categorical columns are sent as strings, numeric ones as floats)"
        )


def _classes(
    model: artifact.Model, truth: npt.NDArray[Any], predicted: npt.NDArray[Any]
) -> list[str]:
    fitted = getattr(getattr(model, "estimator", None), "classes_", None)
    seen = {str(v) for v in truth.tolist()} | {str(v) for v in predicted.tolist()}
    if fitted is not None:
        ordered = [str(c) for c in fitted]
        return ordered + sorted(seen - set(ordered))
    return sorted(seen)


def _has_probabilities(
    model: artifact.Model, rows: pd.DataFrame, kinds: Mapping[str, Kind]
) -> bool:
    try:
        return model.predict_proba(served_matrix(rows, kinds)) is not None
    except Exception:
        return False


def profile_of(directory: Path) -> ReferenceProfile:
    """The reference profile in a packaged directory."""
    [path] = sorted(directory.glob("model.*.profile.json"))
    return ReferenceProfile.load(path)


__all__ = ["Packaged", "PackagingError", "package", "profile_of"]
