"""Labelled feedback: ground truth for earlier predictions, matched by request id.

Clients learn the truth later (a chargeback, a human review) and post it with
the id of the inference request. The server remembers recent predictions in a
bounded LRU map (memory stays fixed whatever the traffic), scores each label,
and keeps live accuracy over a sliding window of labelled rows, so a model
that is worse on today's data shows it within minutes of a rollout starting.
A regressor's labels are numbers: each row's absolute error is kept instead,
and the window gives live MAE and RMSE.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from modelserver.inputs import InputError, check_request_id


class UnknownRequestError(LookupError):
    """No remembered prediction for that id: never served, or evicted."""


@dataclass(frozen=True)
class FeedbackResult:
    request_id: str
    correct: int
    incorrect: int
    # Regression only: each labelled row's |truth - prediction|.
    absolute_errors: tuple[float, ...] = field(default=())


class RegressionFeedbackTracker:
    """Live error of numeric predictions: absolute errors over a window of labelled rows."""

    def __init__(self, cache_size: int, window: int, min_samples: int) -> None:
        self._cache_size = cache_size
        self._predictions: OrderedDict[str, tuple[float, ...]] = OrderedDict()
        self._errors: deque[float] = deque(maxlen=window)
        self._min_samples = min_samples

    def remember(self, request_id: str, predictions: Sequence[object]) -> None:
        self._predictions[request_id] = tuple(float(p) for p in predictions)  # type: ignore[arg-type]
        self._predictions.move_to_end(request_id)
        if len(self._predictions) > self._cache_size:
            self._predictions.popitem(last=False)

    def score(self, request_id: str, labels: Sequence[object]) -> FeedbackResult:
        predicted = _take(self._predictions, request_id, len(labels), self._cache_size)
        errors = tuple(
            abs(float(truth) - guess)  # type: ignore[arg-type]
            for truth, guess in zip(labels, predicted, strict=True)
        )
        self._errors.extend(errors)
        return FeedbackResult(request_id, 0, 0, errors)

    def _ready(self) -> bool:
        n = len(self._errors)
        return n > 0 and n >= self._min_samples

    def accuracy(self) -> float | None:
        return None

    def mae(self) -> float | None:
        """Mean absolute error over the window, or None below min_samples labels."""
        return math.fsum(self._errors) / len(self._errors) if self._ready() else None

    def rmse(self) -> float | None:
        """Root mean squared error over the window, or None below min_samples labels."""
        if not self._ready():
            return None
        return math.sqrt(math.fsum(e * e for e in self._errors) / len(self._errors))


def _take(remembered: OrderedDict[str, Any], request_id: str, labels: int, cache_size: int) -> Any:
    """The remembered predictions of `request_id`, forgotten once taken (scored once:
    a second post for the same id would double-count it)."""
    predicted = remembered.get(request_id)
    if predicted is None:
        raise UnknownRequestError(
            f"no prediction remembered for request id {request_id!r}: it was never served "
            f"by this process or has been evicted (the last {cache_size} are kept)"
        )
    if labels != len(predicted):
        raise InputError(
            f"request {request_id!r} predicted {len(predicted)} rows but feedback has "
            f"{labels} labels",
            kind="label_count",
        )
    del remembered[request_id]
    return predicted


class FeedbackTracker:
    def __init__(self, cache_size: int, window: int, min_samples: int) -> None:
        self._cache_size = cache_size
        self._predictions: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._outcomes: deque[bool] = deque(maxlen=window)
        self._correct_in_window = 0
        self._min_samples = min_samples

    def remember(self, request_id: str, predictions: Sequence[object]) -> None:
        # Labels are compared as strings: JSON clients send 1 or "1" for the
        # same class, and class labels are strings in the profile anyway.
        self._predictions[request_id] = tuple(str(p) for p in predictions)
        self._predictions.move_to_end(request_id)
        if len(self._predictions) > self._cache_size:
            self._predictions.popitem(last=False)

    def score(self, request_id: str, labels: Sequence[object]) -> FeedbackResult:
        predicted = _take(self._predictions, request_id, len(labels), self._cache_size)
        correct = 0
        for truth, guess in zip(labels, predicted, strict=True):
            hit = str(truth) == guess
            correct += hit
            if len(self._outcomes) == self._outcomes.maxlen:
                self._correct_in_window -= self._outcomes[0]
            self._outcomes.append(hit)
            self._correct_in_window += hit
        return FeedbackResult(request_id, correct, len(labels) - correct)

    def accuracy(self) -> float | None:
        """Accuracy over the window, or None while it holds fewer than min_samples labels."""
        n = len(self._outcomes)
        if n == 0 or n < self._min_samples:
            return None
        return self._correct_in_window / n


def parse_feedback(payload: object, numeric: bool = False) -> tuple[str, list[object]]:
    """{"id": "<request id>", "labels": [one per row]} -> (id, labels); `numeric`: a
    regressor's labels, finite numbers."""
    if not isinstance(payload, dict):
        raise InputError(
            'feedback must be a JSON object: {"id": "...", "labels": [...]}', kind="bad_feedback"
        )
    request_id = payload.get("id")
    if request_id is None:
        raise InputError(
            "feedback needs the 'id' of the inference request it labels", kind="bad_feedback"
        )
    request_id = check_request_id(request_id, "feedback 'id'")
    labels = payload.get("labels")
    if not isinstance(labels, list) or not labels:
        raise InputError(
            "feedback needs 'labels': a non-empty list, one per predicted row",
            kind="bad_feedback",
        )
    if numeric:
        for label in labels:
            if not _finite_number(label):
                raise InputError(
                    "each label must be a finite number: this model is a regressor",
                    kind="bad_feedback",
                )
        return request_id, labels
    for label in labels:
        if type(label) not in (str, int) or isinstance(label, bool):
            raise InputError("each label must be a string or an integer class", kind="bad_feedback")
    return request_id, labels


def _finite_number(value: object) -> bool:
    """A JSON number a float can hold: not a bool, NaN, infinity or a 400-digit integer."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False
