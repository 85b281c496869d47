"""Champion against challenger on the same live requests: agreement, prediction PSI, MAD.

In a rollout's shadow phase the champion mirrors a sample of its requests to the
challenger (modelserver.shadow) and hands each answer here beside its own
prediction for the same rows. A compared row costs O(1): whether the two labels
agree (a classifier; compared as strings, as feedback compares labels, so 1 and
"1" are one class) or their absolute difference (a regressor), and both
predictions' bins, into a ring of the last `window` rows. The evaluation timer
turns the ring into the figures an analysis gates on: the share of rows that
agree, the PSI between the two prediction distributions (binned and computed as
prediction drift is), and the mean absolute difference. Below `min_rows` the
snapshot carries no figures, so the gauges are absent rather than a perfect 1.0
after three requests.

The window belongs to one challenger version: rows from another version start
it afresh, so a new canary is never judged on its predecessor's answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from modelserver.drift import PredictionBins, Ring
from modelserver.feedback import finite_number
from modelserver.profile import FeatureProfile
from modelserver.stats import psi

# What a class label in a JSON answer may be; anything else is not a prediction.
_LABEL_TYPES = (str, int, float, bool)


class ShadowAnswerError(ValueError):
    """The challenger answered something that cannot be compared with the champion's rows."""


@dataclass(frozen=True)
class Compared:
    """One answer's rows: how many a classifier's challenger agreed on, or a
    regressor's absolute differences, row by row."""

    rows: int
    agreed: int = 0
    differences: tuple[float, ...] = ()


@dataclass(frozen=True)
class AgreementSnapshot:
    """The window at one evaluation; no figures while it holds fewer than the minimum."""

    challenger_version: str
    rows: int
    agreement: float | None = None
    prediction_psi: float | None = None
    mean_abs_difference: float | None = None


class AgreementWindow:
    def __init__(
        self, prediction: FeatureProfile, regression: bool, window: int, min_rows: int
    ) -> None:
        self._bins = PredictionBins(prediction)
        self._n_bins = prediction.n_bins
        self._regression = regression
        self._min_rows = max(min_rows, 1)
        # Columns: the champion's bin, the challenger's bin, 1 where the labels agree.
        self._ring = Ring(window, 3)
        self._differences = Ring(window, 1, np.float64)
        self.challenger_version = ""

    def compare(
        self, challenger_version: str, champion: npt.NDArray[Any], challenger: Sequence[object]
    ) -> Compared:
        """Add one answer's rows; ShadowAnswerError (nothing added) when it cannot be compared."""
        rows = len(champion)
        if len(challenger) != rows:
            raise ShadowAnswerError(
                f"the challenger predicted {len(challenger)} rows for a request of {rows}"
            )
        answered: npt.NDArray[Any]
        differences: npt.NDArray[np.float64] | None = None
        if self._regression:
            answered = _numbers(challenger)
            differences = np.abs(champion.astype(np.float64) - answered)
            agreed = np.zeros(rows, dtype=bool)
        else:
            answered = _labels(challenger)
            agreed = _strings(champion.tolist()) == answered
        if challenger_version != self.challenger_version:
            self._ring.clear()
            self._differences.clear()
            self.challenger_version = challenger_version
        self._ring.write(np.column_stack([self._bins(champion), self._bins(answered), agreed]))
        if differences is None:
            return Compared(rows, agreed=int(agreed.sum()))
        self._differences.write(differences.reshape(-1, 1))
        return Compared(rows, differences=tuple(differences.tolist()))

    def evaluate(self) -> AgreementSnapshot:
        count = self._ring.count
        version = self.challenger_version
        if count < self._min_rows:
            return AgreementSnapshot(version, count)
        window = self._ring.filled()
        champion = np.bincount(window[:, 0], minlength=self._n_bins) / count
        challenger = np.bincount(window[:, 1], minlength=self._n_bins) / count
        spread = psi(champion, challenger)
        if self._regression:
            mad = float(self._differences.filled().mean())
            return AgreementSnapshot(version, count, prediction_psi=spread, mean_abs_difference=mad)
        agreement = float(window[:, 2].mean())
        return AgreementSnapshot(version, count, agreement=agreement, prediction_psi=spread)


def _labels(values: Sequence[object]) -> npt.NDArray[Any]:
    if not all(type(v) in _LABEL_TYPES for v in values):
        raise ShadowAnswerError("the challenger's predictions are not class labels")
    return _strings(values)


def _strings(values: Sequence[object]) -> npt.NDArray[Any]:
    return np.asarray([str(v) for v in values], dtype=object)


def _numbers(values: Sequence[object]) -> npt.NDArray[np.float64]:
    if not all(finite_number(v) for v in values):
        raise ShadowAnswerError("the challenger's predictions are not finite numbers")
    return np.asarray(values, dtype=np.float64)
