"""Resolving spec.model.registry before planning and moving the champion alias after,
against a registry double that answers as MLflow's REST client would."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from modelrollout.api import HistoryEntry, ModelDeploymentStatus, RegistryVersion, parse_spec
from modelrollout.api.reasons import Reason
from modelrollout.handlers import registry as model_registry
from modelrollout.registry import RegistryUnavailableError, VersionRejectedError
from modelrollout.settings import OperatorSettings

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 2, tzinfo=UTC)
SPEC = {
    "replicas": 2,
    "model": {"name": "churn", "registry": {"name": "churn-model", "alias": "candidate"}},
    "template": {"spec": {"containers": [{"name": "server", "image": "srv:1"}]}},
    "strategy": {"canary": {"steps": [{"setWeight": 50}]}},
}
SETTINGS = OperatorSettings(registry_uri="http://127.0.0.1:5000")


def _version(number: str) -> RegistryVersion:
    return RegistryVersion(name="churn-model", version=number, sha256=number * 64)


@dataclass
class Registry:
    aliases: dict[str, str] = field(default_factory=lambda: {"candidate": "2"})
    down: bool = False
    uris: list[str] = field(default_factory=list)
    moves: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, uri: str) -> Registry:
        self.uris.append(uri)
        return self

    def alias(self, name: str, alias: str) -> RegistryVersion:
        if self.down:
            raise RegistryUnavailableError("MLflow registry at http://x is unreachable")
        if alias not in self.aliases:
            raise VersionRejectedError(f"alias {alias} not found")
        return _version(self.aliases[alias])

    def version(self, name: str, version: str) -> RegistryVersion:
        return _version(version)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        if self.down:
            raise RegistryUnavailableError("MLflow registry at http://x is unreachable")
        self.moves.append((alias, version))
        self.aliases[alias] = version


def test_the_alias_resolves_to_a_pinned_model_the_core_can_plan() -> None:
    registry = Registry()
    resolved = model_registry.resolve(parse_spec(SPEC), None, SETTINGS, NOW, registry)
    model = resolved.spec.model
    assert (model.version, model.uri, model.sha256) == ("2", "models:/churn-model/2", "2" * 64)
    assert resolved.status is not None
    assert resolved.status.alias == "candidate"
    assert resolved.status.resolved.version == "2"
    assert resolved.status.champion_alias == "champion"
    assert registry.uris == ["http://127.0.0.1:5000"]  # the operator's MLFLOW_TRACKING_URI


def test_the_spec_uri_wins_over_the_operators_default() -> None:
    raw = {
        **SPEC,
        "model": {
            "name": "churn",
            "registry": {"name": "churn-model", "version": "5", "uri": "http://mlflow.ml:5000"},
        },
    }
    registry = Registry()
    resolved = model_registry.resolve(parse_spec(raw), None, SETTINGS, NOW, registry)
    assert registry.uris == ["http://mlflow.ml:5000"]
    assert resolved.spec.model.registry is not None
    assert resolved.spec.model.registry.uri == "http://mlflow.ml:5000"  # handed to the pods


def test_no_registry_address_anywhere_is_a_spec_problem() -> None:
    with pytest.raises(model_registry.NoRegistryAddressError) as caught:
        model_registry.resolve(parse_spec(SPEC), None, OperatorSettings(), NOW, Registry())
    assert model_registry.reason_of(caught.value) is Reason.INVALID_SPEC
    assert "MLFLOW_TRACKING_URI" in str(caught.value)


def test_failures_say_whether_the_registry_is_down_or_the_version_is_wrong() -> None:
    with pytest.raises(RegistryUnavailableError) as down:
        model_registry.resolve(parse_spec(SPEC), None, SETTINGS, NOW, Registry(down=True))
    assert model_registry.reason_of(down.value) is Reason.REGISTRY_UNAVAILABLE
    with pytest.raises(VersionRejectedError) as missing:
        model_registry.resolve(parse_spec(SPEC), None, SETTINGS, NOW, Registry(aliases={}))
    assert model_registry.reason_of(missing.value) is Reason.REGISTRY_VERSION_REJECTED


def _serving(resolved: model_registry.Resolved, version: RegistryVersion) -> ModelDeploymentStatus:
    entry = HistoryEntry(
        number=1, revision="rev2", version=version.version, promoted_at=NOW, registry=version
    )
    return ModelDeploymentStatus(stable_revision="rev2", history=(entry,), registry=resolved.status)


def test_the_champion_alias_follows_what_serves_once() -> None:
    registry = Registry()
    spec = parse_spec(SPEC)
    resolved = model_registry.resolve(spec, None, SETTINGS, NOW, registry)
    status = _serving(resolved, _version("2"))
    moved = model_registry.move_champion(spec, status, SETTINGS, registry)
    assert registry.moves == [("champion", "2")]
    assert moved is not None and moved.champion_version == "2"
    again = model_registry.move_champion(
        spec, status.model_copy(update={"registry": moved}), SETTINGS, registry
    )
    assert again == moved and registry.moves == [("champion", "2")]  # not moved twice
    # The next resolution keeps what was moved.
    later = model_registry.resolve(spec, moved, SETTINGS, NOW, registry)
    assert later.status is not None and later.status.champion_version == "2"


def test_a_champion_move_that_fails_is_kept_to_retry_and_does_not_raise() -> None:
    registry = Registry()
    spec = parse_spec(SPEC)
    resolved = model_registry.resolve(spec, None, SETTINGS, NOW, registry)
    registry.down = True
    moved = model_registry.move_champion(
        spec, _serving(resolved, _version("2")), SETTINGS, registry
    )
    assert moved is not None and moved.champion_version is None
    assert "champion alias not moved" in moved.message


def test_nothing_serving_from_the_registry_moves_nothing() -> None:
    registry = Registry()
    spec = parse_spec(SPEC)
    resolved = model_registry.resolve(spec, None, SETTINGS, NOW, registry)
    status = ModelDeploymentStatus(registry=resolved.status)
    assert model_registry.move_champion(spec, status, SETTINGS, registry) == resolved.status
    assert registry.moves == []
