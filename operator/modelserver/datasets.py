"""Example data that ships inside installed packages, so nothing is downloaded at run time.

scikit-learn bundles `wine` (13 numeric features, 3 classes),
`breast_cancer` (30 numeric, 2 classes) and `diabetes` (10 numeric features, a
numeric target: disease progression, for regressors); `palmerpenguins` bundles
the penguins table (4 numeric and 2 categorical features, 3 species), which
exercises the categorical paths (category sets, unseen categories). Used by
`train` (the classification tables) and by `loadgen` (all of them), never by the
serving process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from modelserver.profile import Kind

Task = Literal["classification", "regression"]

CLASSIFICATION_DATASETS = ("wine", "breast_cancer", "penguins")
REGRESSION_DATASETS = ("diabetes",)
DATASETS = CLASSIFICATION_DATASETS + REGRESSION_DATASETS


@dataclass(frozen=True)
class Feature:
    name: str
    kind: Kind


@dataclass(frozen=True)
class Dataset:
    name: str
    features: tuple[Feature, ...]
    # (rows, features): float64 when every feature is numeric, else object
    # with floats and strings, column order as `features`.
    X: npt.NDArray[Any]
    # Class labels (strings), or a regressor's float64 targets.
    y: npt.NDArray[Any]
    # The numeric feature whose lower half makes the `shifted` variant's training slice.
    shift_feature: str
    task: Task = "classification"

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def column(self, name: str) -> npt.NDArray[Any]:
        return self.X[:, self.feature_names.index(name)]


def _identifier(name: str) -> str:
    """'od280/od315_of_diluted_wines' -> 'od280_od315_of_diluted_wines': safe as a V2 input name."""
    return re.sub(r"[^0-9a-zA-Z_]+", "_", name).strip("_").lower()


def load_dataset(name: str) -> Dataset:
    if name in ("wine", "breast_cancer"):
        from sklearn import datasets

        loader = datasets.load_wine if name == "wine" else datasets.load_breast_cancer
        bunch = loader()
        features = tuple(Feature(_identifier(n), "numeric") for n in bunch.feature_names)
        labels = np.asarray([str(bunch.target_names[t]) for t in bunch.target])
        shift = "alcohol" if name == "wine" else "mean_radius"
        return Dataset(name, features, np.asarray(bunch.data, dtype=np.float64), labels, shift)
    if name == "diabetes":
        from sklearn import datasets

        bunch = datasets.load_diabetes()
        features = tuple(Feature(_identifier(n), "numeric") for n in bunch.feature_names)
        target = np.asarray(bunch.target, dtype=np.float64)
        data = np.asarray(bunch.data, dtype=np.float64)
        return Dataset(name, features, data, target, "bmi", task="regression")
    if name == "penguins":
        import palmerpenguins

        frame = palmerpenguins.load_penguins()
        columns = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm"]
        columns += ["body_mass_g", "sex"]
        frame = frame.dropna(subset=[*columns, "species"])
        features = tuple(
            Feature(c, "categorical" if c in ("island", "sex") else "numeric") for c in columns
        )
        matrix = np.empty((len(frame), len(columns)), dtype=object)
        for i, feature in enumerate(features):
            values = frame[feature.name].to_numpy()
            matrix[:, i] = (
                [str(v) for v in values] if feature.kind == "categorical" else values.astype(float)
            )
        labels = np.asarray([str(s) for s in frame["species"]])
        return Dataset(name, features, matrix, labels, "flipper_length_mm")
    raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
