"""A user's own models, for the registry tests and the demo's retraining story:
pipelines fitted on a dataset a package ships (scikit-learn's breast cancer table
for a classifier, its diabetes table for a regressor, with the column names the
traffic generator sends), packaged with `modelserver.packaging.package` and
registered with `modelserver.registration.register`, as a data scientist would
from a notebook. Not one of `modelrollout train`'s variants. Dev and test
tooling, not the operator."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from modelserver.datasets import load_dataset
from modelserver.packaging import Packaged, package
from modelserver.registration import Registered, register

if TYPE_CHECKING:
    import pandas as pd

DATASET = "breast_cancer"
TARGET = "diagnosis"
REGRESSION_DATASET = "diabetes"
REGRESSION_TARGET = "progression"


@dataclass(frozen=True)
class UserModel:
    packaged: Packaged

    def register(self, tracking_uri: str, name: str, alias: str | None = None) -> Registered:
        return register(self.packaged.directory, name, tracking_uri=tracking_uri, alias=alias)


def labelled_rows() -> pd.DataFrame:
    """The classifier's dataset as a user's labelled table: its features, then TARGET."""
    import pandas as pd

    data = load_dataset(DATASET)
    frame = pd.DataFrame(data.X, columns=list(data.feature_names))
    frame[TARGET] = data.y
    return frame


def packaged_classifier(
    out: Path, *, c: float = 1.0, label_bug: float = 0.0, seed: int = 0
) -> UserModel:
    """A standardized logistic regression; `label_bug` relabels that share of the
    most common class as the other one (trained on bad labels: live accuracy drops,
    inputs look as usual)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = labelled_rows()
    labels = frame[TARGET].to_numpy().copy()
    if label_bug:
        rng = np.random.default_rng(seed)
        classes, counts = np.unique(labels, return_counts=True)
        victim, other = classes[np.argmax(counts)], classes[np.argmin(counts)]
        rows = np.flatnonzero(labels == victim)
        labels[rng.choice(rows, int(len(rows) * label_bug), replace=False)] = other
    frame[TARGET] = labels
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
    pipeline.fit(frame.drop(columns=[TARGET]), frame[TARGET])
    return UserModel(package(pipeline, frame, TARGET, out, name="breast-cancer"))


def packaged_regressor(
    out: Path, *, boosted: bool = False, units_bug: float = 1.0, seed: int = 0
) -> UserModel:
    """A ridge regression on standardized features, or (`boosted`) LightGBM's
    gradient-boosted trees through its scikit-learn API; `units_bug` scales the
    training targets (a target read in the wrong units: live error grows, inputs
    look as usual)."""
    import pandas as pd
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_dataset(REGRESSION_DATASET)
    frame = pd.DataFrame(data.X, columns=list(data.feature_names))
    frame[REGRESSION_TARGET] = data.y * units_bug
    pipeline: Pipeline
    if boosted:
        from lightgbm import LGBMRegressor

        booster = LGBMRegressor(n_estimators=60, num_leaves=8, random_state=seed, verbose=-1)
        pipeline = make_pipeline(booster)
    else:
        pipeline = make_pipeline(StandardScaler(), Ridge(alpha=1.0))
    pipeline.fit(frame.drop(columns=[REGRESSION_TARGET]), frame[REGRESSION_TARGET])
    return UserModel(
        package(pipeline, frame, REGRESSION_TARGET, out, name="diabetes", task="regression")
    )
