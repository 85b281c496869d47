"""Pruning a registered model in a real MLflow server: the operator's client lists
every version (page by page) with its aliases and deletes one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from modelrollout.devenv.registry import RegistryServer
from modelrollout.registry import MlflowRegistry, VersionRejectedError
from modelserver.registration import Registered
from support.packages import UserModel, packaged_classifier

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
