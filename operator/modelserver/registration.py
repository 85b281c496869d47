"""Registering a packaged model in an MLflow model registry, with its dataset.

One MLflow run holds everything a version needs to be served, judged and rolled
back: the artifact with its digest, reference profile and model card (under
`model/`, the version's source), the training data file(s) (under `dataset/`,
and as the run's dataset input with its digest), the card's metrics and the
library versions. The version's tags carry what the operator and the server read
without downloading anything (README: "Model registry (MLflow)"). Nothing is left
half registered: the files are checked against the card before anything is sent,
and a failure after the run started marks it FAILED and deletes a version made
for it.

MLflow's own client (mlflow-skinny, the `registry` extra) does the talking; it
is imported only here, so serving never needs it.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CARD_FILE = "model-card.json"
SHA256_TAG = "modelrollout.io/sha256"
ARTIFACT_TAG = "modelrollout.io/artifact"
DATASET_SHA256_TAG = "modelrollout.io/dataset-sha256"
DATASET_ROWS_TAG = "modelrollout.io/dataset-rows"
TASK_TAG = "modelrollout.io/task"
METRIC_TAG_PREFIX = "modelrollout.io/metric."
READY_TIMEOUT_SECONDS = 60.0


class RegistrationError(ValueError):
    """The package cannot be registered as it is, or the registry refused it."""


@dataclass(frozen=True)
class Registered:
    name: str
    version: str
    sha256: str
    run_id: str
    source: str
    dataset_sha256: str
    alias: str | None = None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "uri": self.uri,
            "alias": self.alias,
            "sha256": self.sha256,
            "datasetSha256": self.dataset_sha256,
            "runId": self.run_id,
            "source": self.source,
        }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_package(directory: Path) -> dict[str, Any]:
    """The card of a package directory whose files all match it."""
    card_path = directory / CARD_FILE
    try:
        card: dict[str, Any] = json.loads(card_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistrationError(
            f"{directory} is not a package: no {CARD_FILE} (make one with `modelrollout package`)"
        ) from None
    except (OSError, ValueError) as error:
        raise RegistrationError(f"{card_path} is not readable JSON: {error}") from None
    try:
        artifact = card["artifact"]
        dataset = card["dataset"]
        checks = [(directory / artifact["file"], artifact["sha256"], "the artifact")]
        checks.append((directory / dataset["file"], dataset["sha256"], "the training data"))
    except (KeyError, TypeError):
        raise RegistrationError(f"{card_path} lacks artifact or dataset digests") from None
    for path, expected, what in checks:
        if not path.is_file():
            raise RegistrationError(f"{what} {path} named by {CARD_FILE} is missing")
        actual = _sha256(path)
        if actual != expected:
            raise RegistrationError(
                f"{what} {path.name} does not match {CARD_FILE} (sha256 {actual}, card says "
                f"{expected}): the package was changed after `modelrollout package`; package again"
            )
    profile = directory / f"{artifact['file']}.profile.json"
    if not profile.is_file():
        raise RegistrationError(f"the reference profile {profile} is missing")
    return card


def version_tags(card: dict[str, Any]) -> dict[str, str]:
    tags = {
        SHA256_TAG: card["artifact"]["sha256"],
        ARTIFACT_TAG: card["artifact"]["file"],
        DATASET_SHA256_TAG: card["dataset"]["sha256"],
        DATASET_ROWS_TAG: str(card["dataset"].get("rows", "")),
        TASK_TAG: str(card.get("task", "")),
    }
    for name, value in (card.get("metrics") or {}).items():
        tags[f"{METRIC_TAG_PREFIX}{name}"] = repr(float(value))
    return tags


def register(
    package_dir: str | Path,
    name: str,
    *,
    tracking_uri: str,
    alias: str | None = None,
    experiment: str = "modelrollout",
    description: str | None = None,
) -> Registered:
    """Registers the package in `package_dir` as a new version of `name` (created
    when missing), and points `alias` at it when given."""
    directory = Path(package_dir)
    card = read_package(directory)
    if not tracking_uri:
        raise RegistrationError("no registry: give --tracking-uri or set MLFLOW_TRACKING_URI")
    try:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
    except ImportError:
        raise RegistrationError(
            "registering needs MLflow's client: pip install 'modelrollout[registry]'"
        ) from None
    _reachable(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        return _register(client, directory, card, name, alias, experiment, description)
    except MlflowException as error:
        raise RegistrationError(f"MLflow at {tracking_uri}: {error.message}") from None


def _reachable(tracking_uri: str) -> None:
    """MLflow's client retries an unreachable server for minutes; a person waiting
    at a prompt wants to know at once."""
    import urllib.error
    import urllib.request

    if not tracking_uri.startswith(("http://", "https://")):
        return  # a local store (file:, sqlite:) has nothing to reach
    try:
        with urllib.request.urlopen(f"{tracking_uri.rstrip('/')}/health", timeout=10):  # noqa: S310
            pass
    except urllib.error.HTTPError:
        pass  # it answered: some servers (behind a proxy) have no /health
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise RegistrationError(f"MLflow at {tracking_uri} is unreachable: {reason}") from None


def _register(
    client: Any,
    directory: Path,
    card: dict[str, Any],
    name: str,
    alias: str | None,
    experiment: str,
    description: str | None,
) -> Registered:
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    run = client.create_run(experiment_id, tags={"mlflow.runName": f"{name}-package"})
    run_id = run.info.run_id
    version = None
    try:
        _log_run(client, run_id, directory, card)
        try:
            client.create_registered_model(name, description=description)
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        source = f"{run.info.artifact_uri}/model"
        created = client.create_model_version(
            name, source, run_id=run_id, tags=version_tags(card), description=description
        )
        version = str(created.version)
        _wait_ready(client, name, version)
        if alias:
            client.set_registered_model_alias(name, alias, version)
    except BaseException:
        if version is not None:
            client.delete_model_version(name, version)
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return Registered(
        name=name,
        version=version,
        sha256=card["artifact"]["sha256"],
        run_id=run_id,
        source=source,
        dataset_sha256=card["dataset"]["sha256"],
        alias=alias,
    )


def _log_run(client: Any, run_id: str, directory: Path, card: dict[str, Any]) -> None:
    artifact = card["artifact"]["file"]
    for file in (artifact, f"{artifact}.sha256", f"{artifact}.profile.json", CARD_FILE):
        if (directory / file).is_file():
            client.log_artifact(run_id, str(directory / file), artifact_path="model")
    data_dir = directory / "data"
    client.log_artifacts(run_id, str(data_dir), artifact_path="dataset")
    client.log_inputs(run_id, datasets=[_dataset_input(directory, card)])
    for metric, value in (card.get("metrics") or {}).items():
        client.log_metric(run_id, metric, float(value))
    for library, installed in (card.get("libraries") or {}).items():
        client.log_param(run_id, f"library.{library}", installed)
    client.log_param(run_id, "task", card.get("task", ""))


def _dataset_input(directory: Path, card: dict[str, Any]) -> Any:
    """The training data as MLflow's dataset input: its schema and profile from the
    table, and our sha256 of the file as its digest (the same the version's tag and
    the model card carry, so all three can be compared)."""
    import pandas as pd
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.entities import Dataset, DatasetInput, InputTag

    dataset = card["dataset"]
    path = directory / dataset["file"]
    frame = pd.read_parquet(path) if dataset.get("format") == "parquet" else pd.read_csv(path)
    logged = from_pandas(frame, name=Path(dataset["file"]).name, targets=dataset.get("target"))
    entity = logged._to_mlflow_entity()
    ours = Dataset(
        name=entity.name,
        # MLflow keeps at most 36 characters of a digest; the tag has all of it.
        digest=dataset["sha256"][:36],
        source_type=entity.source_type,
        source=json.dumps({"file": dataset["file"], "sha256": dataset["sha256"]}),
        schema=entity.schema,
        profile=entity.profile,
    )
    context = InputTag(key="mlflow.data.context", value="training")
    return DatasetInput(dataset=ours, tags=[context])


def _wait_ready(client: Any, name: str, version: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        status = client.get_model_version(name, version).status
        if status == "READY":
            return
        if status == "FAILED_REGISTRATION" or time.monotonic() > deadline:
            raise RegistrationError(f"model {name} version {version} is {status}, not READY")
        time.sleep(0.5)
