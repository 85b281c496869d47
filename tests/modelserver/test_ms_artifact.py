"""Artifact safety (digest, pickle policy) and the trained variants and their output."""

from __future__ import annotations

import hashlib
import json
import pickle
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io
from ms_helpers import CLI

from modelserver import artifact
from modelserver.artifact import ArtifactError
from modelserver.datasets import load_dataset
from modelserver.profile import ReferenceProfile
from modelserver.training import train

pytestmark = pytest.mark.unit


def estimator(path: str) -> Any:
    return skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))


def test_digest_mismatch_is_refused_before_loading(models: dict[str, dict[str, Any]]) -> None:
    model = models["wine-improved"]
    with pytest.raises(ArtifactError, match="sha256 mismatch") as caught:
        artifact.inspect(model["uri"], "0" * 64, allow_pickle=False)
    assert model["sha256"] in str(caught.value)
    found = artifact.inspect(model["uri"], "SHA256:" + model["sha256"].upper(), False)
    assert found.sha256 == model["sha256"]


def test_pickle_is_refused_unless_allowed(
    models: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    path = tmp_path / "model.joblib"
    path.write_bytes(pickle.dumps(estimator(models["wine-improved"]["path"])))
    with pytest.raises(ArtifactError, match="run arbitrary code") as caught:
        artifact.inspect(str(path), "", allow_pickle=False)
    assert "MODELSERVER_ALLOW_PICKLE" in str(caught.value)
    loaded = artifact.load(artifact.inspect(str(path), "", allow_pickle=True))
    assert loaded.n_features == 13


def test_a_pickle_named_skops_is_refused(models: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    path = tmp_path / "innocent.skops"
    path.write_bytes(pickle.dumps({"not": "a model"}))
    with pytest.raises(ArtifactError, match="content is a pickle"):
        artifact.inspect(str(path), "", allow_pickle=True)


def test_remote_uris_and_unknown_formats_are_explained(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="mount the artifact"):
        artifact.inspect("s3://bucket/model.skops", "", False)
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(ArtifactError, match="cannot tell the format"):
        artifact.inspect(str(tmp_path / "model.bin"), "", False)


def test_onnx_export_predicts_like_the_skops_pipeline(tmp_path: Path) -> None:
    onnx = train("wine", "improved", tmp_path, fmt="onnx")
    skops_model = train("wine", "improved", tmp_path, fmt="skops")
    data = load_dataset("wine")
    served = artifact.load(artifact.inspect(onnx.path.as_uri(), onnx.sha256, False))
    reference = estimator(str(skops_model.path))
    assert served.predict(data.X).tolist() == reference.predict(data.X).tolist()
    proba = served.predict_proba(data.X)
    assert proba is not None
    np.testing.assert_allclose(proba, reference.predict_proba(data.X), atol=1e-4)


def test_variants_are_honestly_better_and_worse(models: dict[str, dict[str, Any]]) -> None:
    accuracy = {k: v["holdout_accuracy"] for k, v in models.items() if k.startswith("wine")}
    assert accuracy["wine-improved"] > accuracy["wine-baseline"] > accuracy["wine-degraded"]


def test_the_shifted_variant_profiles_only_its_slice(models: dict[str, dict[str, Any]]) -> None:
    shifted = ReferenceProfile.load(Path(models["wine-shifted"]["profile"]))
    full = ReferenceProfile.load(Path(models["wine-improved"]["profile"]))
    alcohol = load_dataset("wine").column("alcohol")
    assert shifted.features[0].name == "alcohol"
    assert shifted.features[0].edges[-1] < np.median(alcohol) < full.features[0].edges[-1]


def test_train_cli_prints_uri_and_sha256_of_each_artifact(tmp_path: Path) -> None:
    done = subprocess.run(
        [CLI, "train", "--dataset", "wine", "--variant", "baseline", "--out", str(tmp_path)],
        capture_output=True,
        check=True,
        timeout=120,
    )
    [entry] = json.loads(done.stdout)["artifacts"]
    path = Path(entry["path"])
    assert entry["uri"] == path.resolve().as_uri()
    assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert Path(f"{path}.sha256").read_text().split()[0] == entry["sha256"]
    assert ReferenceProfile.load(Path(entry["profile"])).feature_names[0] == "alcohol"
