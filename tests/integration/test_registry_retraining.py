"""`modelrollout retrain` against a real MLflow server: the champion is fetched by alias
through the model server's registry code, an accepted candidate becomes a new version
behind alias `candidate` (with its dataset input), and a rejected run leaves the
registry as it was.

The champion is a user's logistic regression fitted on bad labels (a labelling bug
relabelled 40% of the benign rows): fresh, correctly labelled rows make a better
model of the same pipeline."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from modelrollout.devenv.registry import RegistryServer
from modelrollout.devenv.usermodels import TARGET, labelled_rows, packaged_classifier
from modelrollout.registry import MlflowRegistry, VersionRejectedError
from support.rollouts import MODELROLLOUT

pytestmark = pytest.mark.integration

NAME = "bc-retrain"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    with RegistryServer(tmp_path_factory.mktemp("mlflow")) as server:
        yield server


def _fresh_rows(path: Path) -> Path:
    labelled_rows().to_csv(path, index=False)
    return path


def _retrain(tracking_uri: str, *args: str) -> tuple[int, dict[str, Any], str]:
    done = subprocess.run(
        [str(MODELROLLOUT), "retrain", *args, "--tracking-uri", tracking_uri],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": str(MODELROLLOUT.parent)},
        check=False,
    )
    return done.returncode, json.loads(done.stdout), done.stderr


def _versions(tracking_uri: str) -> list[str]:
    answer = requests.get(
        f"{tracking_uri}/api/2.0/mlflow/model-versions/search",
        params={"filter": f"name='{NAME}'"},
        timeout=10,
    ).json()
    return sorted(v["version"] for v in answer.get("model_versions", []))


def test_retraining_a_registered_champion_registers_only_a_candidate_that_is_not_worse(
    registry: RegistryServer, tmp_path: Path
) -> None:
    champion = packaged_classifier(tmp_path / "champion", label_bug=0.4)
    first = champion.register(registry.url, NAME, alias="champion")
    fresh = _fresh_rows(tmp_path / "fresh.csv")
    client = MlflowRegistry(registry.url)

    code, outcome, err = _retrain(
        registry.url,
        "--champion", f"models:/{NAME}@champion", "--data", str(fresh), "--target", TARGET,
        "--register", NAME, "--alias", "candidate", "--out", str(tmp_path / "run1"),
    )  # fmt: skip
    assert code == 0, err
    assert outcome["accepted"], outcome["reason"]
    assert outcome["championSha256"] == first.sha256
    assert outcome["candidate"]["accuracy"] > outcome["champion"]["accuracy"]
    assert outcome["rows"] == {"train": 398, "heldOut": 171, "freshTrain": 398, "original": 0}
    registered = outcome["registered"]
    assert registered["version"] == "2" and registered["alias"] == "candidate"
    assert json.loads((tmp_path / "run1" / "outcome.json").read_text()) == outcome

    # The registry: a new version behind `candidate`; `champion` untouched.
    behind = client.alias(NAME, "candidate")
    assert behind.version == "2" and behind.sha256 == outcome["sha256"]
    assert client.alias(NAME, "champion").version == first.version == "1"
    card = json.loads((tmp_path / "run1" / "candidate" / "model-card.json").read_text())
    assert behind.dataset_sha256 == card["dataset"]["sha256"] and behind.dataset_rows == 398
    assert card["retraining"]["champion"]["version"] == "1"
    assert card["retraining"]["championMetrics"] == outcome["champion"]
    assert card["retraining"]["heldOut"]["rows"] == 171
    # The run holds the candidate's training rows as its dataset input, with our digest.
    run = requests.get(
        f"{registry.url}/api/2.0/mlflow/runs/get",
        params={"run_id": registered["runId"]},
        timeout=10,
    ).json()["run"]
    (dataset,) = run["inputs"]["dataset_inputs"]
    assert card["dataset"]["sha256"].startswith(dataset["dataset"]["digest"])
    assert {"key": "mlflow.data.context", "value": "training"} in dataset["tags"]

    # Rejected (it would have to win by a whole unit of accuracy): nothing registered, the
    # aliases stay. The champion's own training rows come from the registry's dataset/.
    code, outcome, err = _retrain(
        registry.url,
        "--champion", f"models:/{NAME}@candidate", "--data", str(fresh), "--target", TARGET,
        "--original-from-champion", "--margin", "-1", "--register", NAME, "--alias", "candidate",
        "--out", str(tmp_path / "run2"),
    )  # fmt: skip
    assert code == 3, err
    assert not outcome["accepted"] and "registered" not in outcome
    assert outcome["rows"]["original"] == 398  # version 2's training rows, downloaded
    assert not (tmp_path / "run2" / "candidate").exists()
    assert _versions(registry.url) == ["1", "2"]
    assert client.alias(NAME, "candidate").version == "2"
    with pytest.raises(VersionRejectedError):
        client.version(NAME, "3")


def test_a_champion_the_registry_does_not_have_is_a_failure_not_bad_input(
    registry: RegistryServer, tmp_path: Path
) -> None:
    fresh = _fresh_rows(tmp_path / "fresh.csv")
    code, outcome, err = _retrain(
        registry.url,
        "--champion", "models:/nobody@champion", "--data", str(fresh), "--target", TARGET,
        "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert code == 1, err
    assert outcome["error"]["kind"] == "failure"
    assert "cannot fetch the champion models:/nobody@champion" in outcome["error"]["message"]
    assert not (tmp_path / "run").exists()
