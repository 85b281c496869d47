"""Training the example pipelines and their honest rollout variants.

Every variant is a real scikit-learn pipeline trained on bundled data and
measured on the same held-out split, so "better" and "worse" are numbers in
the output, not claims:

- baseline  v1: a depth-3 decision tree; a good, simple first model.
- improved  v2: standardized logistic regression; better on held-out data.
- degraded  a labelling bug: most rows of one class carry another class's
            label. Inputs look normal (no input drift); accuracy from labelled
            feedback drops, and so does prediction stability.
- shifted   logistic regression trained only on the lower half of one feature
            (e.g. wine's alcohol): its reference profile is that slice, so
            today's full-range live data looks drifted to it.

Each artifact is written with its sha256 and reference profile beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from modelserver.artifact import write_sha256_file
from modelserver.datasets import Dataset, load_dataset
from modelserver.profile import ReferenceProfile, build_reference, feature_profiles

VARIANTS = {
    "baseline": "depth-3 decision tree (v1)",
    "improved": "standardized logistic regression (v2, better)",
    "degraded": "logistic regression on labels corrupted by a labelling bug (worse)",
    "shifted": "logistic regression trained on the lower half of one feature (drifted reference)",
}
FORMATS = ("skops", "onnx")
# Share of the largest class relabelled as another class in the `degraded` variant.
LABEL_BUG_SHARE = 0.7


@dataclass(frozen=True)
class Trained:
    dataset: str
    variant: str
    format: str
    path: Path
    sha256: str
    profile_path: Path
    holdout_accuracy: float
    train_rows: int

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "variant": self.variant,
            "description": VARIANTS[self.variant],
            "format": self.format,
            "path": str(self.path),
            "uri": self.path.resolve().as_uri(),
            "sha256": self.sha256,
            "profile": str(self.profile_path),
            "holdout_accuracy": round(self.holdout_accuracy, 4),
            "train_rows": self.train_rows,
        }


def _pipeline(data: Dataset, variant: str, seed: int) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    numeric = [i for i, f in enumerate(data.features) if f.kind == "numeric"]
    categorical = [i for i, f in enumerate(data.features) if f.kind == "categorical"]
    # Columns by position: the server hands the pipeline a plain array in
    # profile order, so serving needs no pandas.
    prepare: Any = (
        ColumnTransformer(
            [
                ("numeric", StandardScaler(), numeric),
                # Unseen categories are encoded as all-zero rather than failing:
                # the server counts them as drift instead of refusing them.
                ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
            ]
        )
        if categorical
        else StandardScaler()
    )
    if variant == "baseline":
        return make_pipeline(prepare, DecisionTreeClassifier(max_depth=3, random_state=seed))
    return make_pipeline(prepare, LogisticRegression(max_iter=5000))


def _training_rows(
    data: Dataset,
    variant: str,
    x: npt.NDArray[Any],
    y: npt.NDArray[np.str_],
    seed: int,
) -> tuple[npt.NDArray[Any], npt.NDArray[np.str_]]:
    if variant == "shifted":
        column = x[:, data.feature_names.index(data.shift_feature)].astype(np.float64)
        keep = column <= np.median(column)
        return x[keep], y[keep]
    if variant == "degraded":
        rng = np.random.default_rng(seed)
        classes, counts = np.unique(y, return_counts=True)
        victim = classes[np.argmax(counts)]
        wrong = classes[(np.argmax(counts) + 1) % len(classes)]
        corrupted = y.copy()
        rows = np.flatnonzero(y == victim)
        corrupted[rng.choice(rows, int(len(rows) * LABEL_BUG_SHARE), replace=False)] = wrong
        return x, corrupted
    return x, y


def build_profile(
    data: Dataset, x: npt.NDArray[Any], predictions: npt.NDArray[Any], classes: list[str], bins: int
) -> ReferenceProfile:
    columns = [(f.name, f.kind, x[:, i]) for i, f in enumerate(data.features)]
    return build_reference(
        feature_profiles(columns, bins), predictions, "classification", classes, bins
    )


def train(
    dataset: str,
    variant: str,
    out_dir: Path,
    fmt: str = "skops",
    seed: int = 0,
    bins: int = 10,
) -> Trained:
    from sklearn.model_selection import train_test_split

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    data = load_dataset(dataset)
    x_train, x_test, y_train, y_test = train_test_split(
        data.X, data.y, test_size=0.3, random_state=seed, stratify=data.y
    )
    x_fit, y_fit = _training_rows(data, variant, x_train, y_train, seed)
    pipeline = _pipeline(data, variant, seed).fit(x_fit, y_fit)
    accuracy = float(np.mean(pipeline.predict(x_test) == y_test))
    classes = [str(c) for c in np.unique(data.y)]
    profile = build_profile(data, x_fit, pipeline.predict(x_fit), classes, bins)

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{dataset}-{variant}.{fmt}"
    if fmt == "skops":
        import skops.io

        skops.io.dump(pipeline, path)
    else:
        export_onnx(pipeline, [(f.name, f.kind) for f in data.features], path)
    digest = write_sha256_file(path)
    profile_path = Path(f"{path}.profile.json")
    profile.save(profile_path)
    return Trained(dataset, variant, fmt, path, digest, profile_path, accuracy, len(x_fit))


def export_onnx(pipeline: Any, features: list[tuple[str, str]], path: Path) -> None:
    """Write `pipeline` as ONNX: numeric-only data as one float tensor; with categorical
    columns, one input per column named like it (strings for categorical ones), which
    the server feeds column by column (modelserver.artifact.OnnxModel)."""
    try:
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    except ImportError:
        raise ValueError("ONNX export needs skl2onnx: pip install 'modelrollout[onnx]'") from None
    if all(kind == "numeric" for _, kind in features):
        initial_types: list[tuple[str, Any]] = [("input", FloatTensorType([None, len(features)]))]
    else:
        initial_types = [
            (name, FloatTensorType([None, 1]) if kind == "numeric" else StringTensorType([None, 1]))
            for name, kind in features
        ]
        # The graph's per-column inputs are concatenated in this order, which is
        # the order the ColumnTransformer's positional column indices refer to.
    model = to_onnx(
        pipeline,
        initial_types=initial_types,
        # Plain probability tensors rather than a list of {class: p} maps.
        options={"zipmap": False},
        target_opset=17,
    )
    path.write_bytes(model.SerializeToString())
