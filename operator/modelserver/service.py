"""The transport-agnostic core: one loaded model, its checks, its monitoring.

Everything a request does that is not HTTP lives here (decode and validate,
predict, record drift, remember predictions for feedback, count what the
rollout analysis watches), as plain synchronous methods on parsed JSON. The
HTTP layer only moves bytes, which keeps this testable without sockets and
lets another transport reuse it.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Sequence, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry

from modelserver import artifact, fetch
from modelserver.agreement import AgreementWindow
from modelserver.drift import DriftMonitor, DriftSnapshot
from modelserver.feedback import (
    FeedbackTracker,
    RegressionFeedbackTracker,
    UnknownRequestError,
    check_label_count,
    parse_feedback,
)
from modelserver.inputs import Decoded, InputError, InputSchema
from modelserver.metrics import ServerMetrics
from modelserver.profile import ProfileError, ReferenceProfile
from modelserver.records import Identity, RecordStore, RecordWriter, sampled
from modelserver.settings import Settings
from modelserver.tensors import encode_raw

log = logging.getLogger("modelserver")

__all__ = ["InjectedFaultError", "InputError", "ModelService", "UnknownRequestError"]


class InjectedFaultError(RuntimeError):
    """A failure requested by MODELSERVER_FAULT_ERROR_RATE, answered with 500."""


@dataclass(frozen=True)
class OutputTensor:
    name: str
    datatype: str
    shape: list[int]
    values: npt.NDArray[Any]


@dataclass(frozen=True)
class Prediction:
    labels: npt.NDArray[Any]
    proba: npt.NDArray[np.float64] | None


def _datatype(values: npt.NDArray[Any]) -> str:
    if values.dtype.kind in "iu":
        return "INT64"
    if values.dtype.kind == "f":
        return "FP64"
    if values.dtype.kind == "b":
        return "BOOL"
    return "BYTES"


class ModelService:
    def __init__(
        self,
        settings: Settings,
        model: artifact.Model,
        profile: ReferenceProfile,
        artifact_sha256: str,
        registry: CollectorRegistry,
    ) -> None:
        if model.n_features is not None and model.n_features != len(profile.features):
            raise ProfileError(
                f"the model takes {model.n_features} features but its profile lists "
                f"{len(profile.features)}; they do not belong together"
            )
        try:
            model.bind(profile.features)
        except artifact.ArtifactError as exc:
            raise ProfileError(str(exc)) from None
        self.regression = profile.task == "regression"
        self.settings = settings
        self.model = model
        self.profile = profile
        self.sha256 = artifact_sha256
        # The MLflow registry version MODEL_URI=models:/... resolved to; empty otherwise.
        self.registry_version = ""
        self.schema = InputSchema(profile, settings.max_batch_rows)
        self.metrics = ServerMetrics(
            registry,
            settings.model_name,
            settings.model_version,
            profile.feature_names,
            [f.name for f in profile.features if f.kind == "categorical"],
            artifact_sha256,
            settings.revision,
            regression=self.regression,
        )
        self.drift = (
            DriftMonitor(profile, settings.drift_window, settings.drift_min_samples)
            if settings.drift_enabled
            else None
        )
        # The champion's side of shadow traffic: its predictions against the challenger's.
        self.shadow = AgreementWindow(
            profile.prediction, self.regression, settings.shadow_window, settings.shadow_min_samples
        )
        tracker = RegressionFeedbackTracker if self.regression else FeedbackTracker
        self.feedback: FeedbackTracker | RegressionFeedbackTracker = tracker(
            settings.feedback_cache_size, settings.feedback_window, settings.feedback_min_samples
        )
        self.records = (
            RecordWriter(
                RecordStore(settings.records_dsn),
                Identity(settings.model_name, settings.model_version, settings.revision),
                features=profile.feature_names,
                regression=self.regression,
                queue_rows=settings.records_queue_rows,
                flush_seconds=settings.records_flush_seconds,
                window=settings.feedback_window,
                min_samples=settings.feedback_min_samples,
                retention_seconds=settings.records_retention_hours * 3600.0,
                on_written=self.metrics.records_written.inc,
                on_dropped=self.metrics.records_dropped.inc,
            )
            if settings.records_dsn
            else None
        )
        # Request ids: a per-process random prefix and a counter, unique across
        # replicas and cheaper than a uuid per request.
        self._id_prefix = os.urandom(4).hex()
        self._ids = itertools.count(1)
        self._fault_budget = 0.0

    # -- requests ----------------------------------------------------------------------------

    def new_request_id(self) -> str:
        return f"{self._id_prefix}-{next(self._ids)}"

    def check_model(self, name: str, version: str | None = None) -> None:
        if name != self.settings.model_name:
            raise InputError(
                f"unknown model {name!r}; this server serves {self.settings.model_name!r}",
                status=404,
                kind="unknown_model",
            )
        if version is not None and version != self.settings.model_version:
            raise InputError(
                f"model {name!r} has no version {version!r}; this server serves "
                f"version {self.settings.model_version!r}",
                status=404,
                kind="unknown_version",
            )

    def decode_v2(self, payload: Any, request_id: str) -> Decoded:
        return self._decode(self.schema.decode_v2, payload, request_id)

    def decode_v1(self, payload: Any, request_id: str) -> Decoded:
        return self._decode(self.schema.decode_v1, payload, request_id)

    def _decode(self, decoder: Any, payload: Any, request_id: str) -> Decoded:
        try:
            decoded: Decoded = decoder(payload, request_id)
        except InputError as exc:
            self.metrics.count_missing(exc.missing)
            raise
        self._maybe_fail()
        return decoded

    def _maybe_fail(self) -> None:
        rate = self.settings.fault_error_rate
        if rate <= 0.0:
            return
        # A deterministic accumulator, not a coin: exactly `rate` of requests
        # fail, evenly spread, so tests and demos see the configured rate.
        self._fault_budget += rate
        if self._fault_budget >= 1.0:
            self._fault_budget -= 1.0
            raise InjectedFaultError(
                f"injected fault (MODELSERVER_FAULT_ERROR_RATE={rate}); not a model error"
            )

    def predict(self, matrix: npt.NDArray[Any], proba: bool) -> Prediction:
        try:
            labels = self.model.predict(matrix)
            probabilities = self.model.predict_proba(matrix) if proba else None
        except (ValueError, TypeError) as exc:
            # scikit-learn reports input it cannot handle as ValueError/TypeError.
            raise InputError(
                f"the model rejected the input: {exc}", status=422, kind="model_rejected"
            ) from None
        return Prediction(labels, probabilities)

    def infer(self, batch: Sequence[Decoded]) -> list[Prediction]:
        """Predict for several decoded requests in one model call, then record them all."""
        proba = any("predict_proba" in d.outputs for d in batch)
        if len(batch) == 1:
            results = [self.predict(batch[0].matrix, proba)]
        else:
            whole = self.predict(np.concatenate([d.matrix for d in batch]), proba)
            results = []
            start = 0
            for d in batch:
                end = start + d.rows
                part = None if whole.proba is None else whole.proba[start:end]
                results.append(Prediction(whole.labels[start:end], part))
                start = end
        self._record(batch, results)
        return results

    def _record(self, batch: Sequence[Decoded], results: Sequence[Prediction]) -> None:
        records, rate = self.records, self.settings.records_sample_rate
        for d, r in zip(batch, results, strict=True):
            if d.unseen:
                self.metrics.count_unseen(d.unseen)
            predictions = r.labels.tolist()
            if not d.copy:
                # A copy's label is posted at the champion, which remembers its own answer.
                self.feedback.remember(d.request_id, predictions)
            if records is not None and sampled(d.request_id, rate):
                records.submit(d.request_id, d.matrix, predictions, shadow=d.copy)
        if self.drift is not None:
            if len(batch) == 1:
                self.drift.record(batch[0].numeric, batch[0].codes, results[0].labels)
            else:
                self.drift.record(
                    np.concatenate([d.numeric for d in batch]),
                    np.concatenate([d.codes for d in batch]),
                    np.concatenate([r.labels for r in results]),
                )

    def v2_outputs(self, decoded: Decoded, result: Prediction) -> list[OutputTensor]:
        """The requested outputs as arrays, for any encoding (JSON, binary, gRPC)."""
        outputs = []
        for name in decoded.outputs:
            if name == "predict":
                labels = result.labels
                outputs.append(OutputTensor("predict", _datatype(labels), [decoded.rows], labels))
            elif result.proba is None:
                raise InputError("this model has no predict_proba output", kind="unknown_output")
            else:
                proba = result.proba
                outputs.append(OutputTensor("predict_proba", "FP64", list(proba.shape), proba))
        return outputs

    def v2_response(
        self, decoded: Decoded, outputs: Sequence[OutputTensor], binary: Set[str] = frozenset()
    ) -> tuple[dict[str, Any], bytes]:
        """The JSON response, and the binary part (empty unless `binary` names outputs) that
        follows it under the binary tensor data extension, in the order of `outputs`."""
        described = []
        parts = []
        for output in outputs:
            entry: dict[str, Any] = {
                "name": output.name,
                "datatype": output.datatype,
                "shape": output.shape,
            }
            if output.name in binary:
                raw = encode_raw(output.values, output.datatype)
                entry["parameters"] = {"binary_data_size": len(raw)}
                parts.append(raw)
            else:
                entry["data"] = output.values.reshape(-1).tolist()
            described.append(entry)
        body = {
            "model_name": self.settings.model_name,
            "model_version": self.settings.model_version,
            "id": decoded.request_id,
            "outputs": described,
        }
        return body, b"".join(parts)

    def v1_response(self, result: Prediction) -> dict[str, Any]:
        return {"predictions": result.labels.tolist()}

    def score_feedback(self, payload: Any) -> dict[str, Any]:
        """Score a label for an earlier prediction. With the records store it is saved
        there first (a worker thread runs this: the store is a network call), and the
        prediction may be another replica's, read back from the store."""
        request_id, labels, source = parse_feedback(payload, numeric=self.regression)
        stored = None
        # A request left out of the sample is scored from memory alone, like without a store.
        if self.records is not None and sampled(request_id, self.settings.records_sample_rate):
            stored = self._stored_predictions(request_id)
            check_label_count(request_id, labels, stored)
            self.records.store.add_labels(request_id, labels, source)
        try:
            result = self.feedback.score(request_id, labels, stored)
        except UnknownRequestError:
            self.metrics.count_feedback("unknown_request", len(labels))
            raise
        if self.regression:
            self.metrics.count_feedback("scored", len(labels))
            self.metrics.observe_errors(result.absolute_errors)
            errors = result.absolute_errors
            return {
                "id": request_id,
                "scored": len(errors),
                "mean_absolute_error": sum(errors) / len(errors),
            }
        self.metrics.count_feedback("correct", result.correct)
        self.metrics.count_feedback("incorrect", result.incorrect)
        return {"id": request_id, "correct": result.correct, "incorrect": result.incorrect}

    def _stored_predictions(self, request_id: str) -> tuple[object, ...]:
        """The request's predictions: this replica's memory when it answered (its rows
        may still be queued for the store), else the store's."""
        assert self.records is not None
        found = self.feedback.predictions.peek(request_id)
        if found is None:
            found = self.records.store.predictions(request_id)
        if found is None:
            self.metrics.count_feedback("unknown_request", 1)
            raise UnknownRequestError(
                f"no prediction recorded for request id {request_id!r}: it was never "
                "served, its rows are not written yet (retry in a few seconds) or they are "
                "past the retention limit"
            )
        return found

    def review_sample(self, limit: int) -> dict[str, Any]:
        """Recent unlabelled requests at random, for a person to label (`modelrollout
        review`); needs the records store. A worker thread runs this."""
        if self.records is None:
            raise InputError(
                "review needs the inference-records store (MODELSERVER_RECORDS_DSN): "
                "this server keeps predictions only in its own memory",
                status=409,
                kind="no_records_store",
            )
        return {
            "model_name": self.settings.model_name,
            "features": list(self.profile.feature_names),
            "classes": list(self.profile.classes),
            "requests": self.records.store.review_sample(self.settings.model_name, limit),
        }

    def compare_shadow(
        self, challenger_version: str, predicted: npt.NDArray[Any], answered: Sequence[object]
    ) -> None:
        """The challenger's answer to a copy of a request this server predicted `predicted`
        for: compared row by row and counted; ShadowAnswerError if it is no such answer."""
        compared = self.shadow.compare(challenger_version, predicted, answered)
        self.metrics.shadow.count_compared(challenger_version, compared)

    # -- monitoring --------------------------------------------------------------------------

    def evaluate(self) -> DriftSnapshot:
        """Run on a timer: refresh the drift, accuracy and shadow agreement gauges."""
        snapshot = self.drift.evaluate() if self.drift is not None else DriftSnapshot(samples=0)
        self.metrics.live.snapshot = snapshot
        self.metrics.shadow.window.snapshot = self.shadow.evaluate()
        if self.records is not None:
            # Every replica's labelled rows of this revision, kept fresh by the writer.
            live = self.records.ready()
            self.metrics.live.accuracy = live.accuracy
            self.metrics.live.mae, self.metrics.live.rmse = live.mae, live.rmse
            return snapshot
        self.metrics.live.accuracy = self.feedback.accuracy()
        if isinstance(self.feedback, RegressionFeedbackTracker):
            self.metrics.live.mae = self.feedback.mae()
            self.metrics.live.rmse = self.feedback.rmse()
        return snapshot

    # -- descriptions ------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        inputs = [
            {
                "name": f.name,
                "datatype": "FP64" if f.kind == "numeric" else "BYTES",
                "shape": [-1],
            }
            for f in self.profile.features
        ]
        classes = self.profile.classes
        return {
            "name": self.settings.model_name,
            "versions": [self.settings.model_version],
            "platform": "sklearn",
            "inputs": inputs,
            "outputs": [
                {"name": "predict", "datatype": "BYTES" if classes else "FP64", "shape": [-1]},
                *(
                    []
                    if self.regression
                    else [
                        {"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(classes)]}
                    ]
                ),
            ],
            "parameters": {
                "artifact_sha256": self.sha256,
                "classes": list(classes),
                **({"registry_version": self.registry_version} if self.registry_version else {}),
            },
        }


def load_service(
    settings: Settings, registry: CollectorRegistry, cancel: threading.Event | None = None
) -> ModelService:
    """Download (http/https), inspect, verify and load the artifact and its profile; raise
    with a clear reason. `cancel` stops a download in progress (the server is stopping)."""
    with fetch.localized(settings, cancel) as local:
        model_uri, profile_uri = local.model_uri, local.profile_uri
        found = artifact.inspect(model_uri, local.sha256, settings.allow_pickle)
        if not local.sha256:
            log.warning(
                "MODEL_SHA256 not set: serving %s unverified (sha256 %s)",
                fetch.display_uri(settings.model_uri),
                found.sha256,
            )
        profile_path = (
            artifact.resolve(profile_uri) if profile_uri else Path(f"{found.path}.profile.json")
        )
        profile = ReferenceProfile.load(profile_path)
        model = artifact.load(found, settings.skops_trusted)
    service = ModelService(settings, model, profile, found.sha256, registry)
    service.registry_version = local.registry_version
    return service
