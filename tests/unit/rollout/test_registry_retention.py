"""The registry's retention policy: the newest K and the young are kept, and what
serves, what `undo --to-revision` can reach, what a spec names and what an alias
points to is never deleted, whatever the policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelrollout.api import (
    HistoryEntry,
    ModelDeploymentStatus,
    RegistryStatus,
    RegistryVersion,
    RetrainingRun,
    RetrainingStatus,
)
from modelrollout.api.durations import parse_age
from modelrollout.rollout import (
    Retention,
    RetentionPolicy,
    StoredVersion,
    Tracker,
    decide,
    protected_versions,
)

pytestmark = pytest.mark.unit

MODEL = "churn-model"
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _versions(count: int, *, days_apart: int = 10) -> list[StoredVersion]:
    """Versions 1..count, version `count` created now, each earlier one days older."""
    return [
        StoredVersion(str(v), NOW - timedelta(days=(count - v) * days_apart))
        for v in range(1, count + 1)
    ]


def _registry(version: str) -> RegistryVersion:
    return RegistryVersion(name=MODEL, version=version, sha256=version * 64)


def _entry(number: int, version: str, *, name: str = MODEL) -> HistoryEntry:
    registry = RegistryVersion(name=name, version=version, sha256="a" * 64)
    return HistoryEntry(
        number=number,
        revision=f"rev{number}",
        version=version,
        promoted_at=NOW,
        registry=registry,
    )


def _deleted(decisions: tuple[Retention, ...]) -> list[str]:
    return sorted((d.version for d in decisions if d.delete), key=int)


def test_newest_k_are_kept_and_the_rest_deleted_when_nothing_needs_them() -> None:
    decisions = decide(_versions(6), {}, RetentionPolicy(keep=2), NOW)
    assert [d.version for d in decisions] == ["6", "5", "4", "3", "2", "1"]
    assert _deleted(decisions) == ["1", "2", "3", "4"]
    assert decisions[0].reasons == ("among the newest 2",)
    assert "older than the newest 2" in decisions[-1].reasons[0]


def test_newest_is_by_version_number_not_by_text() -> None:
    versions = [StoredVersion(str(v), NOW) for v in (9, 10, 11)]
    decisions = decide(versions, {}, RetentionPolicy(keep=1), NOW)
    assert _deleted(decisions) == ["9", "10"]


def test_younger_than_keeps_recent_versions_beyond_the_newest_k() -> None:
    # Ages: v6 0d, v5 10d, v4 20d, v3 30d, v2 40d, v1 50d.
    policy = RetentionPolicy(keep=1, keep_younger_than=parse_age("30d"))
    decisions = decide(_versions(6), {}, policy, NOW)
    assert _deleted(decisions) == ["1", "2", "3"]  # 30 days old is not younger than 30d
    by_version = {d.version: d for d in decisions}
    assert by_version["4"].reasons == ("younger than 30d",)
    assert "30d or older" in by_version["3"].reasons[0]


def test_a_protected_version_is_never_deleted_whatever_the_policy() -> None:
    protected = {"1": ("serves ns/churn (stable, history #4)",), "3": ("history #2 of ns/a",)}
    decisions = decide(_versions(5), protected, RetentionPolicy(keep=0), NOW)
    assert _deleted(decisions) == ["2", "4", "5"]
    one = next(d for d in decisions if d.version == "1")
    assert one.protected and not one.delete
    assert one.reasons == ("serves ns/churn (stable, history #4)",)


def test_a_version_behind_an_alias_is_never_deleted() -> None:
    versions = _versions(4)
    versions[0] = StoredVersion("1", versions[0].created_at, aliases=("champion", "candidate"))
    decisions = decide(versions, {}, RetentionPolicy(keep=0), NOW)
    assert _deleted(decisions) == ["2", "3", "4"]
    assert decisions[-1].reasons == ("alias champion", "alias candidate")


def test_a_version_still_being_registered_is_kept_a_failed_one_may_go() -> None:
    versions = [
        StoredVersion("1", NOW, status="PENDING_REGISTRATION"),
        StoredVersion("2", NOW, status="FAILED_REGISTRATION"),
    ]
    decisions = decide(versions, {}, RetentionPolicy(keep=0), NOW)
    assert _deleted(decisions) == ["2"]


def test_every_version_in_history_is_protected_the_serving_one_as_such() -> None:
    status = ModelDeploymentStatus(
        stable_revision="rev5",
        stable_version="7",
        history=(_entry(5, "7"), _entry(4, "5"), _entry(2, "2")),
    )
    protected = protected_versions(MODEL, [Tracker("ns/churn", status, registry_name=MODEL)])
    assert protected == {
        "7": ("serves ns/churn (stable, history #5)",),
        "5": ("history #4 of ns/churn (undo --to-revision)",),
        "2": ("history #2 of ns/churn (undo --to-revision)",),
    }
    decisions = decide(_versions(8), protected, RetentionPolicy(keep=1), NOW)
    assert _deleted(decisions) == ["1", "3", "4", "6"]


def test_canary_resolved_pinned_champion_and_retraining_versions_are_protected() -> None:
    status = ModelDeploymentStatus(
        stable_revision="rev1",
        stable_version="3",
        canary_revision="rev9",
        canary_version="4",
        history=(_entry(1, "3"),),
        registry=RegistryStatus(
            alias="candidate",
            resolved=_registry("4"),
            resolved_at=NOW,
            champion_alias="champion",
            champion_version="3",
        ),
        retraining=RetrainingStatus(
            active=RetrainingRun(
                number=2,
                job="churn-retrain-2",
                trigger="Manual",
                cause="by hand",
                started_at=NOW,
                champion_version="3",
                dataset="1",
            ),
        ),
    )
    tracker = Tracker("prod/churn", status, registry_name=MODEL)
    pinned = Tracker("dev/churn", ModelDeploymentStatus(), MODEL, pinned_version="6")
    protected = protected_versions(MODEL, [tracker, pinned])
    assert sorted(protected) == ["1", "3", "4", "6"]
    assert "being rolled out in prod/churn (canary)" in protected["4"]
    assert "the spec of prod/churn resolves to it" in protected["4"]
    assert "champion of prod/churn" in protected["3"]
    assert protected["1"] == ("dataset of retraining run 2 of prod/churn",)
    assert protected["6"] == ("pinned by the spec of dev/churn",)


def test_other_models_versions_protect_nothing_here() -> None:
    status = ModelDeploymentStatus(
        stable_revision="rev1",
        stable_version="2",
        history=(_entry(1, "2", name="fraud-model"),),
    )
    assert protected_versions(MODEL, [Tracker("ns/fraud", status, "fraud-model")]) == {}


def test_history_written_by_a_deployment_that_moved_to_another_model_still_protects() -> None:
    status = ModelDeploymentStatus(
        stable_revision="rev3",
        stable_version="1",
        history=(_entry(3, "1", name="fraud-model"), _entry(2, "4")),
    )
    protected = protected_versions(MODEL, [Tracker("ns/a", status, "fraud-model")])
    assert protected == {"4": ("history #2 of ns/a (undo --to-revision)",)}


def test_policy_and_ages_are_checked() -> None:
    with pytest.raises(ValueError, match="0 or more"):
        RetentionPolicy(keep=-1)
    assert parse_age("1d12h") == timedelta(hours=36)
    assert parse_age("90m") == timedelta(minutes=90)
    with pytest.raises(ValueError, match="not a duration"):
        parse_age("30 days")
