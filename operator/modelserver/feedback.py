"""Labelled feedback: ground truth for earlier predictions, matched by request id.

Clients learn the truth later (a chargeback, a human review) and post it with
the id of the inference request. The server remembers recent predictions in a
bounded LRU map (memory stays fixed whatever the traffic), scores each label,
and keeps live accuracy over a sliding window of labelled rows, so a model
that is worse on today's data shows it within minutes of a rollout starting.
A regressor's labels are numbers: each row's absolute error is kept instead,
and the window gives live MAE and RMSE.

With the inference-records store (modelserver.records) the label may be for a
prediction another replica made: the service then passes the stored
predictions in, and the trackers only score them. They are locked because that
path runs in a worker thread while the event loop remembers new predictions.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

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
        self.predictions = RememberedPredictions(cache_size)
        self._errors: deque[float] = deque(maxlen=window)
        self._min_samples = min_samples
        self._lock = threading.Lock()

    def remember(self, request_id: str, predictions: Sequence[object]) -> None:
        self.predictions.remember(request_id, tuple(float(p) for p in predictions))  # type: ignore[arg-type]

    def score(
        self, request_id: str, labels: Sequence[object], stored: Sequence[object] | None = None
    ) -> FeedbackResult:
        """Score labels against the remembered predictions, or against `stored` ones
        (from the records store), which are then forgotten here too."""
        predicted = self.predictions.take(request_id, labels, stored)
        errors = tuple(
            abs(float(truth) - float(guess))  # type: ignore[arg-type]
            for truth, guess in zip(labels, predicted, strict=True)
        )
        with self._lock:
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


def check_label_count(
    request_id: str, labels: Sequence[object], predicted: Sequence[object]
) -> None:
    if len(labels) != len(predicted):
        raise InputError(
            f"request {request_id!r} predicted {len(predicted)} rows but feedback has "
            f"{len(labels)} labels",
            kind="label_count",
        )


class RememberedPredictions:
    """The last `cache_size` requests' predictions, for scoring their labels: an LRU
    map, locked (the event loop remembers while a worker thread may take)."""

    def __init__(self, cache_size: int) -> None:
        self._cache_size = cache_size
        self._remembered: OrderedDict[str, tuple[object, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, request_id: str, predictions: tuple[object, ...]) -> None:
        with self._lock:
            self._remembered[request_id] = predictions
            self._remembered.move_to_end(request_id)
            if len(self._remembered) > self._cache_size:
                self._remembered.popitem(last=False)

    def peek(self, request_id: str) -> tuple[object, ...] | None:
        return self._remembered.get(request_id)

    def take(
        self, request_id: str, labels: Sequence[object], stored: Sequence[object] | None
    ) -> Sequence[object]:
        """The predictions of `request_id` (remembered, or `stored`), forgotten once
        taken (scored once: a second post for the same id would double-count it)."""
        with self._lock:
            predicted = self._remembered.get(request_id) if stored is None else stored
            if predicted is None:
                raise UnknownRequestError(
                    f"no prediction remembered for request id {request_id!r}: it was never "
                    f"served by this process or has been evicted (the last "
                    f"{self._cache_size} are kept)"
                )
            check_label_count(request_id, labels, predicted)
            self._remembered.pop(request_id, None)
            return predicted


class FeedbackTracker:
    def __init__(self, cache_size: int, window: int, min_samples: int) -> None:
        self.predictions = RememberedPredictions(cache_size)
        self._outcomes: deque[bool] = deque(maxlen=window)
        self._correct_in_window = 0
        self._min_samples = min_samples
        self._lock = threading.Lock()

    def remember(self, request_id: str, predictions: Sequence[object]) -> None:
        # Labels are compared as strings: JSON clients send 1 or "1" for the
        # same class, and class labels are strings in the profile anyway.
        self.predictions.remember(request_id, tuple(str(p) for p in predictions))

    def score(
        self, request_id: str, labels: Sequence[object], stored: Sequence[object] | None = None
    ) -> FeedbackResult:
        """Score labels against the remembered predictions, or against `stored` ones
        (from the records store), which are then forgotten here too."""
        predicted = self.predictions.take(request_id, labels, stored)
        with self._lock:
            correct = 0
            for truth, guess in zip(labels, predicted, strict=True):
                hit = str(truth) == str(guess)
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


# Who labelled the rows: a downstream signal the client has, or a person reviewing.
LABEL_SOURCES = ("client", "human")


def parse_feedback(payload: object, numeric: bool = False) -> tuple[str, list[object], str]:
    """{"id": "<request id>", "labels": [one per row], "source": "client"|"human"} ->
    (id, labels, source); `numeric`: a regressor's labels, finite numbers."""
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
    source = payload.get("source", "client")
    if source not in LABEL_SOURCES:
        raise InputError(
            "feedback 'source' must be 'client' (the default) or 'human'", kind="bad_feedback"
        )
    labels = payload.get("labels")
    if not isinstance(labels, list) or not labels:
        raise InputError(
            "feedback needs 'labels': a non-empty list, one per predicted row",
            kind="bad_feedback",
        )
    if numeric:
        for label in labels:
            if not finite_number(label):
                raise InputError(
                    "each label must be a finite number: this model is a regressor",
                    kind="bad_feedback",
                )
        return request_id, labels, source
    for label in labels:
        if type(label) not in (str, int) or isinstance(label, bool):
            raise InputError("each label must be a string or an integer class", kind="bad_feedback")
    return request_id, labels, source


def finite_number(value: object) -> bool:
    """A JSON number a float can hold: not a bool, NaN, infinity or a 400-digit integer."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False
