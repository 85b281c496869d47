"""Retraining a served model on fresh labelled rows, and deciding whether the result may
replace it: what `modelrollout retrain` (the retraining Job's program) does.

Why it exists: a model rots (its inputs drift, its live accuracy drops), and the usual
remedy is the same pipeline fitted again on what the world looks like now. That must
work for any model `modelrollout package` packaged, without its author's training
code, so the candidate is `sklearn.base.clone` of the champion's own fitted pipeline:
the same steps and hyperparameters, fitted afresh. The steps (README: "Retraining"):

1. Load the champion's package (a local directory, or `models:/NAME/VERSION` or
   `models:/NAME@ALIAS` downloaded with the server's own registry code), its artifact
   verified against the digest before anything is deserialized, as the server does.
2. Split the fresh labelled rows, seeded (stratified for classifiers when every class
   has rows enough), into train and held-out rows.
3. Fit the clone on the fresh train rows (plus the original training rows when asked),
   on exactly the values the server will feed it (`tabular.served_matrix`).
4. Score candidate and champion on the SAME held-out rows through the server's input
   path (`card.metrics`): a score on different rows would compare the rows, not the
   models.
5. Accept the candidate only when it is not worse than the champion by more than
   `margin` on the decision metric (`card.improvement` knows which way each points),
   and only then package it: its card records the comparison.

Bad input (too few rows, a missing label or feature, one class, labels of the wrong
kind, an ONNX champion) raises RetrainError before anything is written; packaging is
atomic, so a failure leaves no half-written package either.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from modelserver import artifact, card, registry
from modelserver.packaging import CARD_FILE, PackagingError, package
from modelserver.profile import Kind, ReferenceProfile
from modelserver.tabular import TableError, first_line, read_table, served_matrix

if TYPE_CHECKING:
    import pandas as pd

MIN_ROWS = 50
# The inference-records store's columns that describe a request, not the model's input.
RECORD_COLUMNS = ("model_version", "prediction", "request_id", "served_at")
# What `--metric` accepts -> the metric `card.metrics` computes.
METRICS = {"accuracy": "accuracy", "f1": "f1_macro", "f1_macro": "f1_macro"} | {
    "mae": "mae",
    "rmse": "rmse",
}
DEFAULT_METRIC = {"classification": "accuracy", "regression": "mae"}
# Where `modelrollout register` logs the package's data beside its `model/` directory.
REGISTRY_DATASET_DIR = "dataset"
TRAIN_FILE = "train.parquet"
HELD_OUT_FILE = "heldout.parquet"


class RetrainError(ValueError):
    """The input cannot be retrained on; the message names the problem. Nothing was written."""


class ChampionUnavailableError(RuntimeError):
    """The champion could not be fetched (registry unreachable, refused, not found)."""


@dataclass(frozen=True)
class Champion:
    """The model being served, loaded from its package: verified, bound to its profile."""

    source: str  # as given: a directory or a models:/ URI
    card: dict[str, Any]
    model: artifact.SklearnModel
    profile: ReferenceProfile
    sha256: str
    version: str = ""  # the registry version, "" for a local package
    dataset: pd.DataFrame | None = None  # its training data, when asked for

    @property
    def task(self) -> str:
        return str(self.card["task"])

    @property
    def kinds(self) -> dict[str, Kind]:
        """Feature -> kind, in the order of the matrix the server builds."""
        return {f.name: f.kind for f in self.profile.features}

    @property
    def target(self) -> str:
        return str(self.card["dataset"].get("target", ""))

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "sha256": self.sha256,
            "version": self.version or None,
            "name": self.card.get("name"),
        }


@dataclass(frozen=True)
class RetrainOutcome:
    accepted: bool
    task: str
    metric: str
    margin: float
    candidate: dict[str, float]  # every metric, on the held-out fresh rows
    champion: dict[str, float]  # the same metrics, on the same rows
    train_rows: int  # what the candidate was fitted on: fresh_train_rows + original_rows
    held_out_rows: int
    fresh_train_rows: int
    original_rows: int
    stratified: bool
    reason: str
    champion_source: str
    champion_sha256: str
    package: Path | None = None  # the candidate's package, when accepted
    sha256: str | None = None  # the candidate's artifact digest, when accepted

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "task": self.task,
            "metric": self.metric,
            "higherIsBetter": card.HIGHER_IS_BETTER[self.metric],
            "margin": self.margin,
            "candidate": dict(self.candidate),
            "champion": dict(self.champion),
            "rows": {
                "train": self.train_rows,
                "heldOut": self.held_out_rows,
                "freshTrain": self.fresh_train_rows,
                "original": self.original_rows,
            },
            "stratified": self.stratified,
            "reason": self.reason,
            "championSource": self.champion_source,
            "championSha256": self.champion_sha256,
            "package": str(self.package) if self.package is not None else None,
            "sha256": self.sha256,
        }


# -- the champion -----------------------------------------------------------------------------


def load_champion(
    source: str | Path,
    *,
    tracking_uri: str = "",
    with_dataset: bool = False,
    trusted: Sequence[str] = (),
    allow_pickle: bool = False,
) -> Champion:
    """The champion from a package directory or a `models:/` URI (downloaded, through
    MLFLOW_TRACKING_URI or `tracking_uri`, into a temporary directory removed once it
    is in memory); `with_dataset` also reads its training data (`data/<file>`)."""
    text = str(source)
    if not registry.is_registry(text):
        return _read_package(Path(text), text, "", tuple(trusted), allow_pickle, with_dataset)
    try:
        ref = registry.parse(text)
    except registry.RegistryError as exc:
        raise RetrainError(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="modelrollout-champion-") as workdir:
        directory = Path(workdir)
        version = _download(ref, tracking_uri, directory, with_dataset)
        return _read_package(directory, text, version, tuple(trusted), allow_pickle, with_dataset)


def _download(ref: registry.ModelRef, tracking_uri: str, directory: Path, dataset: bool) -> str:
    """The version's package files into `directory`, laid out as `modelrollout package`
    wrote them; the registry version. The server's own resolver and verified downloader
    (modelserver.fetch) do it, with its MODELSERVER_ARTIFACT_* and MLFLOW_TRACKING_*
    settings, so the digest rule is the server's."""
    from modelserver import fetch
    from modelserver.settings import Settings, SettingsError

    try:
        settings = Settings.from_env(
            model_uri=str(ref), mlflow_tracking_uri=tracking_uri.strip() or None
        )
    except SettingsError as exc:
        raise RetrainError(str(exc)) from None
    tracking = settings.mlflow_tracking_uri.strip()
    if not artifact.is_remote(tracking):
        raise RetrainError(
            f"the champion {ref} is in an MLflow registry: give --tracking-uri (or set "
            "MLFLOW_TRACKING_URI) to the tracking server's http(s):// address"
        )
    fetcher = fetch.Fetcher(directory, fetch.Policy.from_settings(settings), threading.Event())
    access = fetch.registry_access(settings)
    try:
        resolved = registry.resolve(
            ref, tracking, "", lambda url, what: fetcher.get_json(url, what, access)
        )
        base = resolved.artifact_url.rpartition("/")[0]
        model = fetcher.download(resolved.artifact_url, "model artifact", resolved.sha256, access)
        fetcher.download_to(
            resolved.profile_url, Path(f"{model}.profile.json"), "reference profile", "", access
        )
        fetcher.download_to(f"{base}/{CARD_FILE}", directory / CARD_FILE, "model card", "", access)
        if dataset:
            described = json.loads((directory / CARD_FILE).read_text(encoding="utf-8"))["dataset"]
            name = Path(described["file"]).name
            (directory / Path(described["file"]).parent).mkdir(parents=True, exist_ok=True)
            # `register` logs data/ as the run's dataset/, a sibling of model/.
            run = base.rpartition("/")[0]
            fetcher.download_to(
                f"{run}/{REGISTRY_DATASET_DIR}/{name}",
                directory / described["file"],
                "training data",
                described["sha256"],
                access,
            )
    except artifact.ArtifactError as exc:
        raise ChampionUnavailableError(f"cannot fetch the champion {ref}: {exc}") from None
    return resolved.version


def _read_package(
    directory: Path,
    source: str,
    version: str,
    trusted: tuple[str, ...],
    allow_pickle: bool,
    with_dataset: bool,
) -> Champion:
    card_path = directory / CARD_FILE
    try:
        document: dict[str, Any] = json.loads(card_path.read_text(encoding="utf-8"))
        described = document["artifact"]
        file, fmt, expected = described["file"], described["format"], described["sha256"]
        if "file" not in document["dataset"]:
            raise KeyError("dataset.file")
    except FileNotFoundError:
        raise RetrainError(
            f"the champion {source} is not a package: no {CARD_FILE} (make one with "
            "`modelrollout package`)"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RetrainError(f"the champion's {CARD_FILE} is not a model card: {exc}") from None
    if fmt == "onnx":
        raise RetrainError(
            f"the champion {source} is an ONNX graph ({file}), which cannot be refitted: ONNX "
            "holds the computation, not a scikit-learn estimator to clone. Retrain the "
            "pipeline it was exported from and package it (skops), or export again"
        )
    path = directory / file
    try:
        found = artifact.inspect(str(path), expected, allow_pickle)
        digest_file = Path(f"{path}.sha256")
        if digest_file.is_file():
            # What MODEL_SHA256 is set from: it must name the same bytes as the card.
            named = digest_file.read_text(encoding="utf-8").split()
            artifact.check_digest(named[0] if named else "", found.sha256, str(path))
        loaded = artifact.load(found, trusted)
        profile = ReferenceProfile.load(Path(f"{path}.profile.json"))
    except FileNotFoundError as exc:
        raise RetrainError(f"the champion's package lacks {Path(str(exc.filename)).name}") from None
    except (artifact.ArtifactError, ValueError) as exc:
        raise RetrainError(f"the champion {source}: {exc}") from None
    if not isinstance(loaded, artifact.SklearnModel):
        raise RetrainError(f"the champion {source} holds no scikit-learn estimator to refit")
    try:
        loaded.bind(profile.features)
    except artifact.ArtifactError as exc:
        raise RetrainError(f"the champion {source}: {exc}") from None
    dataset = _champion_dataset(directory, document) if with_dataset else None
    return Champion(source, document, loaded, profile, found.sha256, version, dataset)


def _champion_dataset(directory: Path, document: dict[str, Any]) -> pd.DataFrame:
    described = document["dataset"]
    path = directory / described["file"]
    if not path.is_file():
        raise RetrainError(f"the champion's training data {described['file']} is missing")
    if artifact.sha256_of(path) != described.get("sha256"):
        raise RetrainError(
            f"the champion's training data {described['file']} does not match its {CARD_FILE}"
        )
    try:
        return read_table(path)
    except TableError as exc:
        raise RetrainError(f"the champion's training data: {exc}") from None


# -- fresh data from the inference-records store ------------------------------------------------


def labelled_records(dsn: str, model: str, *, since: datetime | None = None) -> pd.DataFrame:
    """The labelled rows the inference-records store (modelserver.records) holds for
    `model`: the features as sent and `label`, without the columns that describe the
    request (RECORD_COLUMNS)."""
    from modelserver.records import RecordStore, RecordStoreError

    store = RecordStore(dsn)
    try:
        frame = store.labelled(model, since=since)
    except RecordStoreError as exc:
        raise RetrainError(f"cannot read the inference records: {exc}") from None
    finally:
        store.close()
    if frame.empty:
        after = f" served since {since.isoformat()}" if since is not None else ""
        raise RetrainError(
            f"the inference-records store ({store.where}) has no labelled rows of model "
            f"{model!r}{after}: nothing to train on"
        )
    return frame.drop(columns=[c for c in RECORD_COLUMNS if c in frame.columns])


# -- retraining -------------------------------------------------------------------------------


def retrain(
    champion: Champion | str | Path,
    fresh: pd.DataFrame,
    *,
    target: str = "label",
    original: pd.DataFrame | None = None,
    holdout: float = 0.3,
    margin: float = 0.0,
    metric: str | None = None,
    seed: int = 0,
    out: Path,
    min_rows: int = MIN_ROWS,
    tracking_uri: str = "",
    trusted: Sequence[str] = (),
) -> RetrainOutcome:
    """Fit a clone of `champion` on `fresh` (and `original`) rows, score both on the same
    held-out fresh rows, and package the candidate into `out` when it is not worse than
    the champion by more than `margin` on `metric` (default: accuracy for a classifier,
    MAE for a regressor). `margin` < 0 demands the candidate be better by at least -margin.

    `min_rows`: the fewest labelled fresh rows accepted. `tracking_uri` (else
    MLFLOW_TRACKING_URI) when `champion` is a `models:/` URI; `trusted`: skops types the
    champion's artifact may hold beyond skops' and LightGBM's (as `package --trusted`).
    """
    out = Path(out)
    if out.exists():
        raise RetrainError(f"{out} already exists; retrain into a new directory")
    if not 0.0 < holdout < 1.0:
        raise RetrainError(f"holdout must be a fraction between 0 and 1 (got {holdout})")
    if min_rows < 2:
        raise RetrainError(f"the minimum number of fresh rows must be at least 2 (got {min_rows})")
    if not isinstance(champion, Champion):
        champion = load_champion(champion, tracking_uri=tracking_uri, trusted=trusted)
    task, kinds = champion.task, champion.kinds
    decision = _decision_metric(metric, task)
    rows = _prepare(fresh, champion, target, "the fresh data", fallback=None)
    if len(rows) < min_rows:
        raise RetrainError(
            f"the fresh data has {len(rows)} labelled row(s); at least {min_rows} are needed "
            "to train a candidate and hold rows out to judge it (--min-rows)"
        )
    if task == "classification" and rows[target].astype(str).nunique() < 2:
        only = rows[target].astype(str).iloc[0]
        raise RetrainError(
            f"every fresh label is {only!r}: a classifier cannot be trained or judged on one "
            "class; collect labelled rows of the other classes too"
        )
    train, held, stratified = _split(rows, target, task, holdout, seed)
    extra = None
    if original is not None:
        # The champion's own training data may name its label column differently.
        extra = _prepare(original, champion, target, "the original data", champion.target)
    fit_rows = train if extra is None else _concat(train, extra)

    candidate = _fit(champion, fit_rows, target)
    served = artifact.SklearnModel(candidate)
    served.bind(champion.profile.features)
    truth = held[target].to_numpy()
    candidate_scores = card.metrics(task, truth, _predict(served, held, kinds, "candidate"))
    champion_scores = card.metrics(task, truth, _predict(champion.model, held, kinds, "champion"))
    better = card.improvement(decision, candidate_scores[decision], champion_scores[decision])
    # Rounded like the metrics themselves, so a tie is a tie and not float noise.
    accepted = round(better, 6) >= -margin
    reason = _reason(
        accepted, decision, candidate_scores, champion_scores, better, margin, len(held)
    )
    outcome = RetrainOutcome(
        accepted=accepted,
        task=task,
        metric=decision,
        margin=margin,
        candidate=candidate_scores,
        champion=champion_scores,
        train_rows=len(fit_rows),
        held_out_rows=len(held),
        fresh_train_rows=len(train),
        original_rows=0 if extra is None else len(extra),
        stratified=stratified,
        reason=reason,
        champion_source=champion.source,
        champion_sha256=champion.sha256,
    )
    if not accepted:
        return outcome
    with tempfile.TemporaryDirectory(prefix="modelrollout-retrain-") as workdir:
        # Files, not DataFrames, so the package stores them byte for byte under these
        # names and the held-out file's digest in the card is the stored file's.
        train_path, held_path = Path(workdir) / TRAIN_FILE, Path(workdir) / HELD_OUT_FILE
        fit_rows.to_parquet(train_path, index=False)
        held.to_parquet(held_path, index=False)
        comparison = card.Retraining(
            champion=champion.describe(),
            metric=decision,
            margin=margin,
            candidate_metrics=candidate_scores,
            champion_metrics=champion_scores,
            held_out_rows=len(held),
            held_out_file=f"data/{HELD_OUT_FILE}",
            held_out_sha256=artifact.sha256_of(held_path),
            fresh_train_rows=len(train),
            original_rows=outcome.original_rows,
            seed=seed,
        )
        try:
            packaged = package(
                candidate,
                train_path,
                target,
                out,
                test=held_path,
                feature_types=dict(kinds),
                name=champion.card.get("name"),
                seed=seed,
                trusted=trusted,
                task=task,
                retraining=comparison,
            )
        except PackagingError as exc:
            raise RetrainError(f"cannot package the candidate: {exc}") from None
    return dataclasses.replace(outcome, package=out, sha256=packaged.sha256)


def _decision_metric(metric: str | None, task: str) -> str:
    if metric is None:
        return DEFAULT_METRIC[task]
    chosen = METRICS.get(metric)
    if chosen is None or chosen not in card.TASK_METRICS[task]:
        allowed = ", ".join(k for k, v in METRICS.items() if v in card.TASK_METRICS[task])
        raise RetrainError(f"metric {metric!r} does not score a {task} model; use {allowed}")
    return chosen


def _prepare(
    frame: pd.DataFrame, champion: Champion, target: str, label: str, fallback: str | None
) -> pd.DataFrame:
    """The champion's features, as the server feeds them (numeric: float64; categorical:
    strings, None for nulls), then the labels (from column `target`, else `fallback`);
    unlabelled rows dropped."""
    import pandas as pd
    from pandas.api import types

    columns = [str(c) for c in frame.columns]
    if target not in columns:
        if fallback and fallback in columns:
            frame = frame.rename(columns={fallback: target})
        else:
            hint = (
                f"; the champion was trained with target {champion.target!r} (--target)"
                if champion.target and champion.target != target
                else ""
            )
            raise RetrainError(
                f"label column {target!r} is not in {label}; its columns are "
                f"{', '.join(columns)}{hint}"
            )
    kinds = champion.kinds
    missing = [n for n in kinds if n not in frame.columns]
    if missing:
        raise RetrainError(
            f"{label} lacks feature column(s) the champion needs: {', '.join(missing)}"
        )
    frame = frame[frame[target].notna()].reset_index(drop=True)
    prepared: dict[str, Any] = {}
    for name, kind in kinds.items():
        column = frame[name]
        if kind == "numeric":
            try:
                prepared[name] = pd.to_numeric(column, errors="raise").astype(np.float64)
            except (TypeError, ValueError):
                raise RetrainError(
                    f"feature {name!r} is numeric for the champion but {label} holds "
                    f"{column.dtype} values that are not numbers"
                ) from None
        else:
            prepared[name] = pd.Series(
                [None if v is None or bool(pd.isna(v)) else str(v) for v in column.tolist()],
                dtype=object,
            )
    labels = frame[target]
    if champion.task == "regression":
        if types.is_bool_dtype(labels) or not types.is_numeric_dtype(labels):
            raise RetrainError(
                f"the champion is a regressor but label column {target!r} in {label} holds "
                f"{labels.dtype} values, not numbers"
            )
        prepared[target] = labels.astype(np.float64)
    else:
        prepared[target] = _class_labels(labels, champion, target, label)
    return pd.DataFrame(prepared)


def _class_labels(labels: pd.Series, champion: Champion, target: str, label: str) -> Any:
    """Labels in the type of the champion's classes (a CSV turns 0/1 into 0.0/1.0 once a
    row lacks its label), refusing labels none of which is a class it knows."""
    from pandas.api import types

    fitted = getattr(champion.model.estimator, "classes_", None)
    if (
        fitted is not None
        and np.asarray(fitted).dtype.kind in "iu"
        and types.is_float_dtype(labels)
        and bool((labels == labels.round()).all())
    ):
        labels = labels.astype(np.int64)
    known = {str(c) for c in champion.card["outputs"]["prediction"].get("classes", [])}
    seen = {str(v) for v in labels.tolist()}
    if known and not known & seen:
        shown = ", ".join(sorted(seen)[:5])
        raise RetrainError(
            f"none of the labels in {label}'s column {target!r} ({shown}) is a class the "
            f"champion knows ({', '.join(sorted(known)[:5])}): the wrong column, or labels "
            "of the wrong kind"
        )
    return labels.reset_index(drop=True)


def _split(
    rows: pd.DataFrame, target: str, task: str, holdout: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    from sklearn.model_selection import train_test_split

    index = np.arange(len(rows))
    if task == "classification":
        try:
            train, held = train_test_split(
                index, test_size=holdout, random_state=seed, stratify=rows[target].astype(str)
            )
            return _rows(rows, train), _rows(rows, held), True
        except ValueError:
            pass  # a class with a single row, or fewer held-out rows than classes
    train, held = train_test_split(index, test_size=holdout, random_state=seed)
    return _rows(rows, train), _rows(rows, held), False


def _rows(frame: pd.DataFrame, index: npt.NDArray[Any]) -> pd.DataFrame:
    return frame.iloc[np.sort(index)].reset_index(drop=True)


def _concat(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    return pd.concat([first, second[list(first.columns)]], ignore_index=True)


def _fit(champion: Champion, rows: pd.DataFrame, target: str) -> Any:
    """A clone of the champion's pipeline fitted on what the server will hand it: a
    DataFrame with the columns it was fitted on (Model.bind), or the served matrix."""
    from sklearn.base import clone

    kinds = champion.kinds
    features: Any = served_matrix(rows, kinds)
    fitted_columns = champion.model.fitted_columns
    if fitted_columns is not None:
        features = rows[list(fitted_columns)]
    try:
        candidate = clone(champion.model.estimator)
        candidate.fit(features, rows[target].to_numpy())
    except Exception as exc:
        raise RetrainError(
            f"the champion's pipeline cannot be fitted on the fresh data: "
            f"{type(exc).__name__}: {first_line(exc)}"
        ) from None
    return candidate


def _predict(
    model: artifact.SklearnModel, rows: pd.DataFrame, kinds: Mapping[str, Kind], who: str
) -> npt.NDArray[Any]:
    try:
        return model.predict(served_matrix(rows, kinds))
    except Exception as exc:
        raise RetrainError(
            f"the {who} cannot predict on the held-out fresh rows: "
            f"{type(exc).__name__}: {first_line(exc)}"
        ) from None


def _reason(
    accepted: bool,
    metric: str,
    candidate: Mapping[str, float],
    champion: Mapping[str, float],
    better: float,
    margin: float,
    rows: int,
) -> str:
    scores = (
        f"the candidate's {metric} on the {rows} held-out fresh rows is {candidate[metric]:.4g}, "
        f"the champion's {champion[metric]:.4g}"
    )
    if margin >= 0:
        rule = f"it may be worse by at most {margin:g}" if margin else "it may not be worse"
    else:
        rule = f"it must be better by at least {-margin:g}"
    if accepted:
        verdict = "better" if better > 0 else "no worse" if better == 0 else "worse"
        return f"accepted: {scores} ({verdict} by {abs(better):.4g}; {rule})"
    shown = f"worse by {-better:.4g}" if better < 0 else f"better by only {better:.4g}"
    return f"rejected: {scores} ({shown}; {rule})"


__all__ = [
    "MIN_ROWS",
    "RECORD_COLUMNS",
    "Champion",
    "ChampionUnavailableError",
    "RetrainError",
    "RetrainOutcome",
    "labelled_records",
    "load_champion",
    "retrain",
]
