"""`prune-registry`'s side of the decision: ModelDeployment objects in, a table
out; a status nobody can read, or a registry that fails half-way, stops it with
what was (not) deleted said; an alias that moves after the decision spares its
version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from modelrollout.cli.kube import CliError
from modelrollout.cli.prune import policy_of, prune_registry, report_lines
from modelrollout.registry import MlflowRegistry, RegistryUnavailableError
from modelrollout.rollout import StoredVersion

pytestmark = pytest.mark.unit

MODEL = "churn-model"
NOW = datetime(2026, 6, 1, tzinfo=UTC)


class FakeRegistry:
    def __init__(self, count: int, *, fail_on: str | None = None) -> None:
        self.stored = {
            str(v): StoredVersion(str(v), NOW - timedelta(days=count - v))
            for v in range(1, count + 1)
        }
        self.fail_on = fail_on
        self.listings = 0
        self.alias_after_first_listing: tuple[str, str] | None = None

    def versions(self, name: str) -> tuple[StoredVersion, ...]:
        assert name == MODEL
        self.listings += 1
        if self.listings > 1 and self.alias_after_first_listing:
            version, alias = self.alias_after_first_listing
            old = self.stored[version]
            self.stored[version] = StoredVersion(version, old.created_at, aliases=(alias,))
        return tuple(self.stored.values())

    def delete_version(self, name: str, version: str) -> None:
        if version == self.fail_on:
            raise RegistryUnavailableError("MLflow registry at http://mlflow answered HTTP 500")
        del self.stored[version]


def _deployment(namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"model": {"name": "churn", "registry": {"name": MODEL, "alias": "candidate"}}},
        "status": status,
    }


SERVING_3_AFTER_5 = {
    "stableRevision": "r2",
    "stableVersion": "3",
    "history": [
        {"number": 2, "revision": "r2", "version": "3", "promotedAt": "2026-05-30T00:00:00Z",
         "source": "Undo", "registry": {"name": MODEL, "version": "3", "sha256": "3" * 64}},
        {"number": 1, "revision": "r1", "version": "5", "promotedAt": "2026-05-29T00:00:00Z",
         "registry": {"name": MODEL, "version": "5", "sha256": "5" * 64}},
    ],
}  # fmt: skip


def _prune(registry: FakeRegistry, deployments: list[dict[str, Any]], *, dry_run: bool) -> Any:
    return prune_registry(
        cast("MlflowRegistry", registry),
        MODEL,
        deployments,
        policy_of(1, None),
        now=NOW,
        dry_run=dry_run,
    )


def test_a_dry_run_shows_the_table_and_deletes_nothing() -> None:
    registry = FakeRegistry(6)
    outcome = _prune(registry, [_deployment("prod", "churn", SERVING_3_AFTER_5)], dry_run=True)
    assert sorted(registry.stored, key=int) == ["1", "2", "3", "4", "5", "6"]
    lines = report_lines(MODEL, outcome, dry_run=True)
    assert lines[0] == "registered model churn-model; ModelDeployments using it: prod/churn"
    table = {line.split()[0]: line for line in lines[2:-1]}
    assert "keep" in table["3"] and "serves prod/churn (stable, history #2)" in table["3"]
    assert "history #1 of prod/churn (undo --to-revision)" in table["5"]
    assert "among the newest 1" in table["6"]
    assert "delete" in table["4"]
    assert lines[-1] == "dry run: 3 version(s) would be deleted (4, 2, 1); nothing deleted"


def test_it_deletes_only_what_the_decision_allows() -> None:
    registry = FakeRegistry(6)
    outcome = _prune(registry, [_deployment("prod", "churn", SERVING_3_AFTER_5)], dry_run=False)
    assert sorted(registry.stored, key=int) == ["3", "5", "6"]
    assert outcome.deleted == ("4", "2", "1")
    assert "their runs and artifacts" in report_lines(MODEL, outcome, dry_run=False)[-1]


def test_a_version_an_alias_reached_after_the_decision_is_spared() -> None:
    registry = FakeRegistry(4)
    registry.alias_after_first_listing = ("2", "candidate")
    outcome = _prune(registry, [], dry_run=False)
    assert sorted(registry.stored, key=int) == ["2", "4"]
    assert outcome.spared == {"2": "alias candidate"}
    line = next(x for x in report_lines(MODEL, outcome, dry_run=False) if x.startswith("2 "))
    assert "keep" in line and "alias candidate (since the decision)" in line


def test_an_unreadable_status_stops_the_prune_before_anything_is_deleted() -> None:
    registry = FakeRegistry(4)
    broken = _deployment("prod", "other", {"history": [{"number": "many"}]})
    with pytest.raises(CliError, match=r"status of modeldeployment prod/other cannot be read"):
        _prune(registry, [broken], dry_run=False)
    assert len(registry.stored) == 4


def test_a_failing_delete_says_what_was_deleted_before_it() -> None:
    registry = FakeRegistry(5, fail_on="2")
    with pytest.raises(CliError, match=r"deleting version 2 .* deleted before it: 4, 3;"):
        _prune(registry, [], dry_run=False)
    assert sorted(registry.stored, key=int) == ["1", "2", "5"]


def test_a_bad_policy_is_a_usage_error() -> None:
    with pytest.raises(CliError) as caught:
        policy_of(-1, None)
    assert caught.value.code == 2
    with pytest.raises(CliError, match="not a duration"):
        policy_of(2, "a month")
