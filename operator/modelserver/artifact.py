"""Loading a model artifact safely: locate it, verify its digest, pick a loader by format.

The digest is checked before a single byte is deserialized, so a tampered or
stale file never runs. skops and ONNX are data formats and load by default;
pickle and joblib execute code from the file while loading, so they are
refused unless the operator of the server allows them explicitly. Heavy
libraries (scikit-learn via skops, onnxruntime) are imported here, on demand,
so `serve --help` and a failed start stay fast.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

import numpy as np
import numpy.typing as npt

from modelserver.profile import FeatureProfile

FORMATS = {".skops": "skops", ".onnx": "onnx", ".pkl": "pickle", ".pickle": "pickle"} | {
    ".joblib": "pickle"
}
# The first byte of every pickle of protocol 2 or later (PROTO opcode).
_PICKLE_MAGIC = b"\x80"
# Types skops does not trust by default that the server trusts anyway: exactly
# what a LightGBM estimator saved through its scikit-learn API contains (README:
# "Bring your own model"). The Booster is rebuilt from LightGBM's own text
# model format, not from code in the file. Anything else must be listed in
# MODELSERVER_SKOPS_TRUSTED (or `package --trusted`) by someone who checked it.
TRUSTED_SKOPS_TYPES = (
    "collections.OrderedDict",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor",
)
# ONNX tensor element types the server feeds a per-column input as.
_ONNX_NUMPY_TYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(string)": np.object_,
}


class ArtifactError(RuntimeError):
    """The artifact cannot be served; the message says why and what to do."""


class Model(Protocol):
    """What the server needs from a loaded model, whatever its format.

    `bind` tells the model the profile's columns (names and kinds, in the
    order of the matrix the server builds), so that a pipeline fitted on a
    DataFrame gets a DataFrame and a multi-input ONNX graph gets one tensor
    per column.
    """

    n_features: int | None

    def bind(self, features: Sequence[FeatureProfile]) -> None: ...

    def predict(self, matrix: npt.NDArray[Any]) -> npt.NDArray[Any]: ...

    def predict_proba(self, matrix: npt.NDArray[Any]) -> npt.NDArray[np.float64] | None: ...

    def prepare_thread(self) -> None:
        """Called on the thread that will serve predictions."""


@dataclass(frozen=True)
class Artifact:
    path: Path
    format: str
    sha256: str


REMOTE_SCHEMES = ("http", "https")


def is_remote(uri: str) -> bool:
    """An artifact the server downloads at start-up (modelserver.fetch) before inspecting it."""
    scheme, sep, _ = uri.partition("://")
    return bool(sep) and scheme.lower() in REMOTE_SCHEMES


def resolve(uri: str) -> Path:
    """The local path a `file://` URI or plain path names; remote URIs are fetched first."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        path = Path(unquote(parsed.path) if parsed.scheme else uri)
        if parsed.netloc and parsed.netloc != "localhost":
            raise ArtifactError(f"file URI {uri!r} names host {parsed.netloc!r}; use file:///path")
        return path
    if is_remote(uri):
        raise ArtifactError("an http(s) artifact is downloaded first (modelserver.fetch)")
    raise ArtifactError(
        f"MODEL_URI scheme {parsed.scheme!r} is not supported: the server reads local files "
        "(file:///path or a plain path) and downloads http:// and https:// URLs at start-up; "
        "for S3 or GCS hand it a presigned URL, or mount the artifact into the pod"
    )


def expected_digest(raw: str) -> str:
    """MODEL_SHA256 as compared: hex, any case, optionally `sha256:`-prefixed; empty: no check."""
    return raw.strip().lower().removeprefix("sha256:")


def check_digest(expected_sha256: str, actual: str, where: str, holder: str = "file") -> None:
    """The one digest rule, for local files and downloads alike: refuse a mismatch."""
    expected = expected_digest(expected_sha256)
    if expected and expected != actual:
        raise ArtifactError(
            f"sha256 mismatch for {where}: expected {expected}, {holder} has {actual}. The "
            "artifact is not the one MODEL_SHA256 names (stale copy, partial download or "
            "tampering); refusing to serve it"
        )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_sha256_file(path: Path) -> str:
    """`<path>.sha256` holding `"<hex>  <name>"` (sha256sum's format), as `train` and
    `package` write it beside an artifact; returns the hex digest."""
    digest = sha256_of(path)
    Path(f"{path}.sha256").write_text(f"{digest}  {path.name}\n", encoding="utf-8")
    return digest


def inspect(uri: str, expected_sha256: str, allow_pickle: bool) -> Artifact:
    """Find, identify and verify the artifact without deserializing anything."""
    path = resolve(uri)
    if not path.is_file():
        raise ArtifactError(f"model artifact {path} does not exist or is not a file")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ArtifactError(
            f"cannot tell the format of {path.name}: expected one of {', '.join(sorted(FORMATS))}"
        )
    with path.open("rb") as handle:
        head = handle.read(1)
    if fmt != "pickle" and head == _PICKLE_MAGIC:
        raise ArtifactError(
            f"{path.name} is named {fmt} but its content is a pickle; refusing to load it"
        )
    actual = sha256_of(path)
    check_digest(expected_sha256, actual, str(path))
    if fmt == "pickle" and not allow_pickle:
        raise ArtifactError(
            f"refusing to load {path.name}: pickle/joblib files run arbitrary code when loaded. "
            "Re-export it as skops (`modelrollout train`, or skops.io.dump) or ONNX, or set "
            "MODELSERVER_ALLOW_PICKLE=true (serve --allow-pickle) if you trust where it came from"
        )
    return Artifact(path=path, format=fmt, sha256=actual)


def load(artifact: Artifact, skops_trusted: tuple[str, ...] = ()) -> Model:
    if artifact.format == "skops":
        return SklearnModel(load_skops(artifact.path, skops_trusted))
    if artifact.format == "onnx":
        return OnnxModel(artifact.path)
    import joblib  # scikit-learn's own dependency; loads plain pickles too

    return SklearnModel(joblib.load(artifact.path))


def load_skops(
    path: Path,
    extra_trusted: Sequence[str],
    how_to_trust: str = "List them in MODELSERVER_SKOPS_TRUSTED (comma-separated)",
) -> Any:
    """The estimator in a skops file, refusing types neither skops, TRUSTED_SKOPS_TYPES
    nor `extra_trusted` trust; `how_to_trust` ends the message (the CLI names its flag)."""
    import skops.io

    try:
        untrusted = skops.io.get_untrusted_types(file=path)
    except Exception as exc:
        raise ArtifactError(f"{path.name} is not a readable skops archive: {exc}") from None
    refused = sorted(set(untrusted) - {*TRUSTED_SKOPS_TYPES, *extra_trusted})
    if refused:
        raise ArtifactError(
            f"{path.name} contains types skops does not trust by default: {', '.join(refused)}. "
            f"{how_to_trust} once you have checked them"
        )
    return skops.io.load(path, trusted=list(untrusted))


class SklearnModel:
    def __init__(self, estimator: Any) -> None:
        if not hasattr(estimator, "predict"):
            raise ArtifactError(f"the artifact holds a {type(estimator).__name__}, not a model")
        self.estimator = estimator
        n = getattr(estimator, "n_features_in_", None)
        self.n_features = int(n) if n is not None else None
        self._has_proba = hasattr(estimator, "predict_proba")
        names = getattr(estimator, "feature_names_in_", None)
        # Fitted on a DataFrame: it is handed one, columns named as in training.
        self.fitted_columns = tuple(str(n) for n in names) if names is not None else None
        self._kinds: dict[str, str] = {}
        self._order: tuple[str, ...] = ()

    def bind(self, features: Sequence[FeatureProfile]) -> None:
        if self.fitted_columns is None:
            return
        names = [f.name for f in features]
        if sorted(names) != sorted(self.fitted_columns):
            raise ArtifactError(
                f"the pipeline was fitted on columns {', '.join(self.fitted_columns)} but the "
                f"profile lists {', '.join(names)}; they do not belong together"
            )
        self._kinds = {f.name: f.kind for f in features}
        self._order = tuple(names)

    def _input(self, matrix: npt.NDArray[Any]) -> Any:
        if not self._order or self.fitted_columns is None:
            return matrix
        import pandas as pd

        position = {name: i for i, name in enumerate(self._order)}
        columns = {}
        for name in self.fitted_columns:
            column = matrix[:, position[name]]
            columns[name] = (
                column.astype(np.float64)
                if self._kinds[name] == "numeric"
                else column.astype(object)
            )
        return pd.DataFrame(columns)

    def prepare_thread(self) -> None:
        import sklearn

        # scikit-learn's config is per thread. Inputs are checked for NaN and
        # infinity before they get here, so its own (costly) check is redundant.
        sklearn.set_config(assume_finite=True)

    def predict(self, matrix: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return np.asarray(self.estimator.predict(self._input(matrix)))

    def predict_proba(self, matrix: npt.NDArray[Any]) -> npt.NDArray[np.float64] | None:
        if not self._has_proba:
            return None
        return np.asarray(self.estimator.predict_proba(self._input(matrix)), dtype=np.float64)


class OnnxModel:
    """An ONNX graph from skl2onnx: `label` (or a regressor's `variable`) and
    `probabilities` out; in, either one float tensor of every feature or one
    tensor per feature named like it (strings for categorical columns)."""

    def __init__(self, path: Path) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise ArtifactError(
                "serving ONNX needs onnxruntime: pip install 'modelrollout[onnx]'"
            ) from None
        try:
            self._session = onnxruntime.InferenceSession(
                str(path), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise ArtifactError(f"{path.name} is not a loadable ONNX model: {exc}") from None
        inputs = self._session.get_inputs()
        # Input name -> ONNX element type, in the graph's order.
        self.input_types = {i.name: str(i.type) for i in inputs}
        self.output_types = {o.name: str(o.type) for o in self._session.get_outputs()}
        for name, kind in self.input_types.items():
            if kind not in _ONNX_NUMPY_TYPES:
                raise ArtifactError(f"{path.name}: input {name!r} is {kind}; not supported")
        self._input = inputs[0].name
        self.per_column = len(inputs) > 1
        if self.per_column:
            self.n_features: int | None = len(inputs)
        else:
            shape = inputs[0].shape
            self.n_features = shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None
        self._outputs = list(self.output_types)
        self._positions: dict[str, int] = {}

    def bind(self, features: Sequence[FeatureProfile]) -> None:
        names = [f.name for f in features]
        if not self.per_column:
            if not all(f.kind == "numeric" for f in features):
                raise ArtifactError(
                    "this ONNX graph takes one float tensor, so every feature must be numeric; "
                    "export categorical columns as separate string inputs"
                )
            return
        if sorted(names) != sorted(self.input_types):
            raise ArtifactError(
                f"the ONNX graph's inputs are {', '.join(self.input_types)} but the profile "
                f"lists {', '.join(names)}; they do not belong together"
            )
        for f in features:
            text = self.input_types[f.name] == "tensor(string)"
            if text != (f.kind == "categorical"):
                raise ArtifactError(
                    f"feature {f.name!r} is {f.kind} in the profile but the ONNX input is "
                    f"{self.input_types[f.name]}"
                )
        self._positions = {name: i for i, name in enumerate(names)}

    def prepare_thread(self) -> None:
        return None

    def _run(self, matrix: npt.NDArray[Any]) -> list[Any]:
        if not self.per_column:
            feed = {self._input: np.asarray(matrix, dtype=np.float32)}
        else:
            if not self._positions:
                raise ArtifactError("a multi-input ONNX model must be bound to its profile")
            feed = {
                name: np.asarray(
                    matrix[:, self._positions[name]], dtype=_ONNX_NUMPY_TYPES[kind]
                ).reshape(-1, 1)
                for name, kind in self.input_types.items()
            }
        return list(self._session.run(None, feed))

    def predict(self, matrix: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return np.asarray(self._run(matrix)[0]).reshape(-1)

    def predict_proba(self, matrix: npt.NDArray[Any]) -> npt.NDArray[np.float64] | None:
        if len(self._outputs) < 2:
            return None
        return np.asarray(self._run(matrix)[1], dtype=np.float64)
