"""Input and prediction drift over a sliding window, at O(1) cost per served row.

Each served row is reduced to one small bin index per feature (and one for the
prediction) and written into a fixed ring buffer; nothing else happens on the
request path. A timer calls `evaluate`, which counts bins over the window and
compares the shares with the reference profile (PSI and a chi-square p-value).
Below `min_samples` rows the snapshot carries no statistics, so the gauges are
absent rather than a noisy or misleading zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from modelserver.profile import FeatureProfile, ReferenceProfile
from modelserver.stats import chi_square_pvalue, psi


@dataclass(frozen=True)
class DriftSnapshot:
    """The result of one evaluation; empty statistics while the window is too small."""

    samples: int
    feature_psi: dict[str, float] = field(default_factory=dict)
    feature_pvalue: dict[str, float] = field(default_factory=dict)
    prediction_psi: float | None = None

    @property
    def ready(self) -> bool:
        return self.prediction_psi is not None


class DriftMonitor:
    def __init__(self, profile: ReferenceProfile, window: int, min_samples: int) -> None:
        self.window = window
        self.min_samples = min_samples
        numeric = [f for f in profile.features if f.kind == "numeric"]
        categorical = [f for f in profile.features if f.kind == "categorical"]
        # Ring columns: numeric features, categorical features, then the prediction.
        self._columns: list[FeatureProfile] = [*numeric, *categorical, profile.prediction]
        self._n_numeric = len(numeric)
        width = max((len(f.edges) for f in numeric), default=0)
        # Edges padded with +inf, so one broadcast comparison bins every numeric
        # column at once: the bin is the number of edges <= value.
        self._edges = np.full((len(numeric), width), np.inf)
        for i, f in enumerate(numeric):
            self._edges[i, : len(f.edges)] = f.edges
        self._prediction_bins = PredictionBins(profile.prediction)
        self._ring = Ring(window, len(self._columns))
        self._reference = [f.reference_shares() for f in self._columns]

    @property
    def samples(self) -> int:
        return self._ring.count

    def record(
        self,
        numeric: npt.NDArray[np.float64],
        categorical_codes: npt.NDArray[np.int16],
        predictions: npt.NDArray[np.generic],
    ) -> None:
        """Add rows: numeric is (n, numeric features), codes are (n, categorical features)."""
        n = len(predictions)
        rows = np.empty((n, len(self._columns)), dtype=np.int16)
        if self._n_numeric:
            rows[:, : self._n_numeric] = (numeric[:, :, None] >= self._edges[None, :, :]).sum(
                axis=2
            )
        rows[:, self._n_numeric : -1] = categorical_codes
        rows[:, -1] = self._prediction_bins(predictions)
        self._ring.write(rows)

    def evaluate(self) -> DriftSnapshot:
        count = self._ring.count
        if count < self.min_samples or count == 0:
            return DriftSnapshot(samples=count)
        window = self._ring.filled()
        psis: dict[str, float] = {}
        pvalues: dict[str, float] = {}
        prediction_psi = 0.0
        for j, column in enumerate(self._columns):
            counts = np.bincount(window[:, j], minlength=column.n_bins).astype(np.int64)
            shares = counts / count
            value = psi(self._reference[j], shares)
            if j == len(self._columns) - 1:
                prediction_psi = value
            else:
                psis[column.name] = value
                pvalues[column.name] = chi_square_pvalue(self._reference[j], counts)
        return DriftSnapshot(
            samples=count, feature_psi=psis, feature_pvalue=pvalues, prediction_psi=prediction_psi
        )


class Ring:
    """The last `window` rows, overwritten in turn: small integers (bin indexes, flags)
    unless told otherwise."""

    def __init__(self, window: int, columns: int, dtype: type[np.generic] = np.int16) -> None:
        self.window = window
        self._rows: npt.NDArray[Any] = np.zeros((window, columns), dtype=dtype)
        self._position = 0
        self.count = 0

    def write(self, rows: npt.NDArray[Any]) -> None:
        n = len(rows)
        if n >= self.window:
            rows = rows[-self.window :]
            n = self.window
        end = self._position + n
        if end <= self.window:
            self._rows[self._position : end] = rows
        else:
            split = self.window - self._position
            self._rows[self._position :] = rows[:split]
            self._rows[: n - split] = rows[split:]
        self._position = end % self.window
        self.count = min(self.count + n, self.window)

    def filled(self) -> npt.NDArray[Any]:
        """The rows written so far (order within the window does not matter to a count)."""
        return self._rows[: self.count]

    def clear(self) -> None:
        self._position = self.count = 0


class PredictionBins:
    """Predictions binned as the profile's prediction column is: a regressor's by its
    training deciles, a class by its index, with one extra bin for a class the profile
    never saw. Prediction drift and the shadow comparison bin the same way."""

    def __init__(self, prediction: FeatureProfile) -> None:
        self.profile = prediction
        self._index = {c: i for i, c in enumerate(prediction.categories)}

    def __call__(self, predictions: npt.NDArray[Any]) -> npt.NDArray[np.intp]:
        if self.profile.kind == "numeric":
            return self.profile.bin_numeric(predictions.astype(np.float64))
        unseen = len(self._index)
        return np.fromiter(
            (self._index.get(str(p), unseen) for p in predictions.tolist()),
            dtype=np.intp,
            count=len(predictions),
        )
