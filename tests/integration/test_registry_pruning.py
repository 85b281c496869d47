"""Pruning a registered model in a real MLflow server: the operator's client lists
every version (page by page) with its aliases and deletes one; `prune-registry`'s
decision deletes only what no ModelDeployment needs and no alias points to, and
the deleted versions' runs keep their artifacts (model and dataset snapshot)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from modelrollout.cli.prune import policy_of, prune_registry
from modelrollout.devenv.ports import free_port
from modelrollout.devenv.registry import RegistryServer
from modelrollout.devenv.usermodels import UserModel, packaged_classifier
from modelrollout.registry import MlflowRegistry, VersionRejectedError
from modelserver.registration import Registered

pytestmark = pytest.mark.integration

MODEL = "bc-prune"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    with RegistryServer(tmp_path_factory.mktemp("mlflow")) as server:
        yield server


@pytest.fixture(scope="module")
def user_model(tmp_path_factory: pytest.TempPathFactory) -> UserModel:
    return packaged_classifier(tmp_path_factory.mktemp("package") / "pkg")


def _register(
    registry: RegistryServer, model: UserModel, name: str, count: int
) -> list[Registered]:
    return [model.register(registry.url, name) for _ in range(count)]


def _history_entry(number: int, registered: Registered, revision: str) -> dict[str, Any]:
    return {
        "number": number,
        "revision": revision,
        "version": registered.version,
        "promotedAt": "2026-06-01T00:00:00Z",
        "registry": {
            "name": registered.name,
            "version": registered.version,
            "sha256": registered.sha256,
        },
    }


def test_the_client_lists_every_version_page_by_page_and_deletes_one(
    registry: RegistryServer, user_model: UserModel
) -> None:
    name = f"{MODEL}-client"
    _register(registry, user_model, name, 3)
    client = MlflowRegistry(registry.url)
    client.set_alias(name, "champion", "2")
    listed = client.versions(name, page_size=2)
    assert sorted(v.version for v in listed) == ["1", "2", "3"]
    assert {v.version: v.aliases for v in listed}["2"] == ("champion",)
    assert all(v.status == "READY" for v in listed)
    assert all(abs((datetime.now(UTC) - v.created_at).total_seconds()) < 600 for v in listed)

    client.delete_version(name, "1")
    assert sorted(v.version for v in client.versions(name)) == ["2", "3"]
    with pytest.raises(VersionRejectedError):
        client.delete_version(name, "1")
    with pytest.raises(VersionRejectedError):
        client.versions("no-such-model")


def test_prune_keeps_what_serves_what_undo_reaches_and_what_an_alias_points_to(
    registry: RegistryServer, user_model: UserModel
) -> None:
    versions = _register(registry, user_model, MODEL, 7)
    client = MlflowRegistry(registry.url)
    client.set_alias(MODEL, "candidate", "7")
    client.set_alias(MODEL, "champion", "4")
    # prod/churn serves version 4 and can undo to 2; another model's deployment
    # with a version 1 protects nothing of this one.
    churn = {
        "metadata": {"namespace": "prod", "name": "churn"},
        "spec": {"model": {"name": "churn", "registry": {"name": MODEL, "alias": "candidate"}}},
        "status": {
            "stableRevision": "r4",
            "stableVersion": "4",
            "history": [_history_entry(3, versions[3], "r4"), _history_entry(1, versions[1], "r2")],
        },
    }
    other = {
        "metadata": {"namespace": "dev", "name": "fraud"},
        "spec": {"model": {"name": "fraud", "registry": {"name": "fraud-model", "version": "1"}}},
        "status": {"stableRevision": "f1", "stableVersion": "1"},
    }
    policy = policy_of(1, "30d")
    now = datetime.now(UTC)
    planned = prune_registry(client, MODEL, [churn, other], policy, now=now, dry_run=True)
    assert not any(d.delete for d in planned.decisions)  # all are younger than 30 days
    assert len(client.versions(MODEL)) == 7

    outcome = prune_registry(
        client, MODEL, [churn, other], policy_of(1, None), now=now, dry_run=False
    )
    assert planned.trackers == outcome.trackers == ("prod/churn",)
    assert sorted(outcome.deleted, key=int) == ["1", "3", "5", "6"]
    assert sorted(v.version for v in client.versions(MODEL)) == ["2", "4", "7"]
    assert client.alias(MODEL, "champion").version == "4"

    # Deleting the version kept its run: the model files and the dataset snapshot.
    def listed(path: str) -> list[str]:
        answer = requests.get(
            f"{registry.url}/api/2.0/mlflow/artifacts/list",
            params={"run_id": versions[0].run_id, "path": path},
            timeout=10,
        ).json()
        return [f["path"] for f in answer.get("files", [])]

    assert listed("dataset") == ["dataset/train.parquet"]
    assert "model/model-card.json" in listed("model")


def test_the_command_deletes_nothing_when_the_cluster_cannot_be_read(
    registry: RegistryServer, user_model: UserModel, tmp_path: Path
) -> None:
    name = f"{MODEL}-nocluster"
    _register(registry, user_model, name, 2)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\n"
        f"clusters: [{{name: gone, cluster: {{server: 'https://127.0.0.1:{free_port()}'}}}}]\n"
        "contexts: [{name: gone, context: {cluster: gone, user: me}}]\n"
        "users: [{name: me, user: {token: x}}]\n"
    )
    done = subprocess.run(
        [
            sys.executable, "-c", "import sys; from modelrollout.cli import main; sys.exit(main())",
            "prune-registry", name, "--keep", "0", "--tracking-uri", registry.url,
            "--kubeconfig", str(kubeconfig),
        ],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "MLFLOW_TRACKING_URI": ""},
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Kubernetes API server cannot be reached" in done.stderr
    assert sorted(v.version for v in MlflowRegistry(registry.url).versions(name)) == ["1", "2"]
