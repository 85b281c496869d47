"""Packaging and registering a user's model in a real MLflow server, and the
operator's registry client reading it back: versions, aliases, the digests and
metrics on each version, the dataset input on its run; a tampered package and a
registry that is not there are refused with messages that say so."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelrollout.devenv.ports import free_port
from modelrollout.devenv.registry import RegistryServer
from modelrollout.devenv.usermodels import TARGET, labelled_rows, packaged_classifier
from modelrollout.registry import MlflowRegistry, RegistryUnavailableError, VersionRejectedError
from modelserver.registration import RegistrationError, register
from support.rollouts import MODELROLLOUT

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    with RegistryServer(tmp_path_factory.mktemp("mlflow")) as server:
        yield server


def _training_files(directory: Path) -> tuple[Path, Path]:
    """A user's pipeline saved with skops and their training table as a CSV file."""
    import skops.io

    frame = labelled_rows()
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    pipeline.fit(frame.drop(columns=[TARGET]), frame[TARGET])
    directory.mkdir(parents=True)
    model, table = directory / "pipeline.skops", directory / "train.csv"
    skops.io.dump(pipeline, model)
    frame.to_csv(table, index=False)
    return model, table


def _cli(*args: str, tracking_uri: str) -> subprocess.CompletedProcess[str]:
    env = {"MLFLOW_TRACKING_URI": tracking_uri, "PATH": str(MODELROLLOUT.parent)}
    return subprocess.run(
        [str(MODELROLLOUT), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )


def test_package_register_twice_then_the_registry_says_which_version_is_behind_the_alias(
    registry: RegistryServer, tmp_path: Path
) -> None:
    model, table = _training_files(tmp_path / "user")
    documents = []
    for round_ in ("v1", "v2"):
        done = _cli(
            "package", "--model", str(model), "--data", str(table), "--target", TARGET,
            "--out", str(tmp_path / round_), "--register", "bc-cli", "--alias", "candidate",
            tracking_uri=registry.url,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        documents.append(json.loads(done.stdout))
    first, second = (d["registered"] for d in documents)
    assert (first["version"], second["version"]) == ("1", "2")
    assert second["uri"] == "models:/bc-cli/2"

    client = MlflowRegistry(registry.url)
    behind = client.alias("bc-cli", "candidate")
    assert behind.version == "2" and behind.sha256 == documents[1]["sha256"]
    card = json.loads((tmp_path / "v2" / "model-card.json").read_text())
    assert behind.dataset_sha256 == card["dataset"]["sha256"]
    assert behind.dataset_rows == card["dataset"]["rows"] == 569
    assert behind.metrics == pytest.approx(card["metrics"])
    assert client.version("bc-cli", "1").sha256 == documents[0]["sha256"]

    # The run that made the version holds its dataset input, with our digest.
    run = requests.get(
        f"{registry.url}/api/2.0/mlflow/runs/get", params={"run_id": second["runId"]}, timeout=10
    ).json()["run"]
    (dataset,) = run["inputs"]["dataset_inputs"]
    assert card["dataset"]["sha256"].startswith(dataset["dataset"]["digest"])
    assert {"key": "mlflow.data.context", "value": "training"} in dataset["tags"]
    artifacts = requests.get(
        f"{registry.url}/api/2.0/mlflow/artifacts/list",
        params={"run_id": second["runId"], "path": "dataset"},
        timeout=10,
    ).json()["files"]
    assert [f["path"] for f in artifacts] == ["dataset/train.csv"]


def test_a_tampered_package_is_refused_and_registers_nothing(
    registry: RegistryServer, tmp_path: Path
) -> None:
    packaged = packaged_classifier(tmp_path / "pkg")
    artifact = packaged.packaged.artifact
    artifact.write_bytes(artifact.read_bytes() + b"\0")
    with pytest.raises(RegistrationError, match=r"does not match model-card\.json"):
        register(packaged.packaged.directory, "bc-tampered", tracking_uri=registry.url)
    with pytest.raises(VersionRejectedError):
        MlflowRegistry(registry.url).version("bc-tampered", "1")
    done = _cli("register", str(packaged.packaged.directory), "--name", "bc-tampered",
                tracking_uri=registry.url)  # fmt: skip
    assert done.returncode == 2 and "does not match model-card.json" in done.stderr


def test_no_registry_there_is_a_clear_error_for_the_operator_and_the_user(tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RegistryUnavailableError, match="unreachable") as caught:
        MlflowRegistry(nowhere, timeout_seconds=5).alias("bc", "candidate")
    assert nowhere in str(caught.value)
    packaged = packaged_classifier(tmp_path / "pkg")
    with pytest.raises(RegistrationError, match=nowhere.removeprefix("http://")):
        register(packaged.packaged.directory, "bc", tracking_uri=nowhere)
