"""The reference profile: what the training data looked like, frozen beside the model.

Drift is measured against this file, never against live data, so that a slow
drift cannot move its own baseline. It holds, per numeric feature, quantile bin
edges and the share of training rows in each bin; per categorical feature, the
category set and shares; and the same for the model's predictions. It is plain
JSON so that people and other tools can read it, and it is built with numpy
only, so the serving process needs nothing more to use it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

PROFILE_FORMAT = "modelrollout.profile/v1"
Kind = Literal["numeric", "categorical"]


class ProfileError(ValueError):
    """The profile file is missing or malformed."""


@dataclass(frozen=True)
class FeatureProfile:
    """One column's reference distribution.

    Numeric: bin i holds values v with edges[i-1] <= v < edges[i] (bin 0 is
    everything below edges[0], the last bin everything from edges[-1] up).
    Categorical: bin i is categories[i]; one extra bin, len(categories), holds
    categories never seen in training, with reference share 0.
    """

    name: str
    kind: Kind
    shares: tuple[float, ...]
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def n_bins(self) -> int:
        return len(self.edges) + 1 if self.kind == "numeric" else len(self.categories) + 1

    def reference_shares(self) -> npt.NDArray[np.float64]:
        """Shares over all bins, including the (empty) unseen-category bin."""
        shares = list(self.shares)
        if self.kind == "categorical":
            shares.append(0.0)
        return np.asarray(shares, dtype=np.float64)

    def bin_numeric(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
        return np.searchsorted(np.asarray(self.edges), values, side="right")

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "kind": self.kind, "shares": list(self.shares)}
        if self.kind == "numeric":
            data["edges"] = list(self.edges)
        else:
            data["categories"] = list(self.categories)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeatureProfile:
        kind = data.get("kind")
        if kind not in ("numeric", "categorical"):
            raise ProfileError(f"feature {data.get('name')!r}: unknown kind {kind!r}")
        profile = cls(
            name=str(data["name"]),
            kind=kind,
            shares=tuple(float(s) for s in data["shares"]),
            edges=tuple(float(e) for e in data.get("edges", ())),
            categories=tuple(str(c) for c in data.get("categories", ())),
        )
        expected = profile.n_bins - (1 if kind == "categorical" else 0)
        if len(profile.shares) != expected:
            raise ProfileError(
                f"feature {profile.name!r}: {len(profile.shares)} shares for {expected} bins"
            )
        return profile


def numeric_profile(name: str, values: npt.ArrayLike, n_bins: int) -> FeatureProfile:
    """Quantile edges (duplicates merged, so discrete columns get fewer bins) and shares."""
    column = np.asarray(values, dtype=np.float64)
    quantiles = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    edges = np.unique(np.quantile(column, quantiles))
    bins = np.searchsorted(edges, column, side="right")
    counts = np.bincount(bins, minlength=len(edges) + 1)
    shares = counts / counts.sum()
    return FeatureProfile(
        name=name,
        kind="numeric",
        edges=tuple(float(e) for e in edges),
        shares=tuple(float(s) for s in shares),
    )


def categorical_profile(
    name: str, values: Sequence[Any] | npt.NDArray[Any], categories: Sequence[str] | None = None
) -> FeatureProfile:
    """Shares of each category; `categories` lists ones to keep even when absent (e.g. classes)."""
    labels = [str(v) for v in values]
    cats = sorted(set(labels)) if categories is None else [str(c) for c in categories]
    index = {c: i for i, c in enumerate(cats)}
    counts = np.zeros(len(cats), dtype=np.float64)
    for label in labels:
        counts[index[label]] += 1
    shares = counts / max(counts.sum(), 1.0)
    return FeatureProfile(
        name=name,
        kind="categorical",
        categories=tuple(cats),
        shares=tuple(float(s) for s in shares),
    )


def _present(values: npt.ArrayLike, kind: Kind) -> npt.NDArray[Any]:
    """The column without its nulls (None, NaN): the server refuses nulls, so the
    reference describes the values it can be sent."""
    column = np.asarray(values, dtype=np.float64 if kind == "numeric" else object)
    if kind == "numeric":
        present: npt.NDArray[Any] = column[~np.isnan(column)]
        return present
    keep = [v is not None and not (isinstance(v, float) and np.isnan(v)) for v in column]
    return column[np.asarray(keep, dtype=bool)] if len(column) else column


def feature_profiles(
    columns: Sequence[tuple[str, Kind, npt.ArrayLike]], bins: int
) -> tuple[FeatureProfile, ...]:
    """The profile of each training column (name, kind, values), nulls left out."""
    return tuple(
        numeric_profile(name, _present(values, kind), bins)
        if kind == "numeric"
        else categorical_profile(name, _present(values, kind))
        for name, kind, values in columns
    )


def build_reference(
    features: Sequence[FeatureProfile],
    predictions: npt.ArrayLike,
    task: str,
    classes: Sequence[str],
    bins: int,
) -> ReferenceProfile:
    """The profile of the training columns and of the model's predictions on them:
    categorical over its classes for a classifier, quantile-binned for a regressor."""
    predicted = np.asarray(predictions)
    prediction = (
        numeric_profile("prediction", predicted.astype(np.float64), bins)
        if task == "regression"
        else categorical_profile("prediction", predicted, classes)
    )
    return ReferenceProfile(
        features=tuple(features),
        prediction=prediction,
        n_samples=len(predicted),
        task=task,
        classes=tuple(str(c) for c in classes) if task != "regression" else (),
    )


@dataclass(frozen=True)
class ReferenceProfile:
    features: tuple[FeatureProfile, ...]
    prediction: FeatureProfile
    n_samples: int
    task: str = "classification"
    classes: tuple[str, ...] = ()

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def all_numeric(self) -> bool:
        return all(f.kind == "numeric" for f in self.features)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": PROFILE_FORMAT,
            "task": self.task,
            "classes": list(self.classes),
            "n_samples": self.n_samples,
            "features": [f.to_json() for f in self.features],
            "prediction": self.prediction.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReferenceProfile:
        if data.get("format") != PROFILE_FORMAT:
            raise ProfileError(f"not a {PROFILE_FORMAT} document (format={data.get('format')!r})")
        features = tuple(FeatureProfile.from_json(f) for f in data["features"])
        names = [f.name for f in features]
        if not names or len(set(names)) != len(names):
            raise ProfileError("the profile must list each feature once, and at least one")
        return cls(
            features=features,
            prediction=FeatureProfile.from_json(data["prediction"]),
            n_samples=int(data["n_samples"]),
            task=str(data.get("task", "classification")),
            classes=tuple(str(c) for c in data.get("classes", ())),
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> ReferenceProfile:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ProfileError(
                f"no reference profile at {path}: `modelrollout train` writes one beside the "
                "model; set MODELSERVER_PROFILE_URI if it lives elsewhere"
            ) from None
        except (OSError, ValueError) as exc:
            raise ProfileError(f"cannot read reference profile {path}: {exc}") from None
        try:
            return cls.from_json(data)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ProfileError):
                raise
            raise ProfileError(f"malformed reference profile {path}: {exc!r}") from None
