"""The model card: what a packaged model takes, gives, scored, and was built from.

One JSON document (`model-card.json`, schemaVersion 1) beside the artifact, for
people reviewing a rollout and for tools (the registry integration reads it),
so its shape is fixed here and nowhere else. Metrics come from held-out rows;
the card says which (`evaluation`), because a score on data the model was
fitted on would be a claim, not a measurement.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import numpy as np
import numpy.typing as npt

CARD_SCHEMA_VERSION = 1
# Distributions whose versions are recorded when installed: what loads, runs or
# produced the artifact. Reproducing a score needs the same ones.
LIBRARIES = (
    "scikit-learn",
    "skops",
    "numpy",
    "pandas",
    "pyarrow",
    "lightgbm",
    "xgboost",
    "onnx",
    "onnxruntime",
    "skl2onnx",
)


@dataclass(frozen=True)
class Input:
    name: str
    kind: str
    dtype: str


@dataclass(frozen=True)
class Evaluation:
    method: str  # "holdout" | "test"
    rows: int
    fraction: float | None
    file: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"method": self.method, "rows": self.rows, "fraction": self.fraction}
        if self.file is not None:
            data["file"] = self.file
        return data


def metrics(task: str, truth: npt.ArrayLike, predicted: npt.ArrayLike) -> dict[str, float]:
    """accuracy and macro F1 for a classifier (labels compared as strings, as feedback
    is), MAE and RMSE for a regressor."""
    from sklearn import metrics as sk

    if task == "classification":
        y = [str(v) for v in np.asarray(truth).tolist()]
        p = [str(v) for v in np.asarray(predicted).tolist()]
        return {
            "accuracy": round(float(sk.accuracy_score(y, p)), 6),
            "f1_macro": round(float(sk.f1_score(y, p, average="macro")), 6),
        }
    y_num = np.asarray(truth, dtype=np.float64)
    p_num = np.asarray(predicted, dtype=np.float64)
    return {
        "mae": round(float(np.mean(np.abs(y_num - p_num))), 6),
        "rmse": round(float(np.sqrt(np.mean((y_num - p_num) ** 2))), 6),
    }


# Each metric `metrics` computes, and whether a higher value is the better model: the
# one place a comparison (retraining's "not worse than the champion") reads it from.
HIGHER_IS_BETTER = {"accuracy": True, "f1_macro": True, "mae": False, "rmse": False}
TASK_METRICS = {"classification": ("accuracy", "f1_macro"), "regression": ("mae", "rmse")}


def improvement(metric: str, candidate: float, baseline: float) -> float:
    """How much better `candidate` scores than `baseline` on `metric`: positive when
    better, negative when worse, whichever way the metric points."""
    delta = candidate - baseline
    return delta if HIGHER_IS_BETTER[metric] else -delta


@dataclass(frozen=True)
class Retraining:
    """How a retrained candidate compared with the model it would replace, both scored
    on the same fresh held-out rows (modelserver.retraining)."""

    champion: Mapping[str, Any]  # source, sha256, name
    metric: str
    margin: float
    candidate_metrics: Mapping[str, float]
    champion_metrics: Mapping[str, float]
    held_out_rows: int
    held_out_file: str
    held_out_sha256: str
    fresh_train_rows: int
    original_rows: int
    seed: int

    def to_json(self) -> dict[str, Any]:
        return {
            "champion": dict(self.champion),
            "metric": self.metric,
            "higherIsBetter": HIGHER_IS_BETTER[self.metric],
            "margin": self.margin,
            "candidateMetrics": dict(self.candidate_metrics),
            "championMetrics": dict(self.champion_metrics),
            "heldOut": {
                "rows": self.held_out_rows,
                "file": self.held_out_file,
                "sha256": self.held_out_sha256,
            },
            "trainRows": {"fresh": self.fresh_train_rows, "original": self.original_rows},
            "seed": self.seed,
        }


def libraries() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in LIBRARIES:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return found


def model_card(
    *,
    name: str | None,
    task: str,
    artifact_file: str,
    artifact_format: str,
    artifact_sha256: str,
    inputs: Sequence[Input],
    classes: Sequence[str],
    probabilities: bool,
    scores: Mapping[str, float],
    evaluation: Evaluation,
    dataset: Mapping[str, Any],
    retraining: Retraining | None = None,
) -> dict[str, Any]:
    prediction: dict[str, Any] = {"type": "categorical" if task == "classification" else "numeric"}
    if task == "classification":
        prediction["classes"] = list(classes)
    document: dict[str, Any] = {
        "schemaVersion": CARD_SCHEMA_VERSION,
        "name": name,
        "task": task,
        "artifact": {"file": artifact_file, "format": artifact_format, "sha256": artifact_sha256},
        "inputs": [{"name": i.name, "type": i.kind, "dtype": i.dtype} for i in inputs],
        "outputs": {"prediction": prediction, "probabilities": probabilities},
        "metrics": dict(scores),
        "evaluation": evaluation.to_json(),
        "dataset": dict(dataset),
        "libraries": libraries(),
        "createdAt": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    if retraining is not None:
        # Only on retrained models: a card without it was packaged by hand.
        document["retraining"] = retraining.to_json()
    return document
