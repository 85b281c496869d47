"""What `status`, `list` and `history` print: the canary steps with the current one
marked, the blue/green stages, the history table and the list table."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelrollout.api import (
    HistoryEntry,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    PendingScaleDown,
    RegistryStatus,
    RegistryVersion,
    parse_spec,
)
from modelrollout.cli.render import (
    bluegreen_lines,
    history_lines,
    list_lines,
    model_source,
    shadow_lines,
    status_lines,
    step_lines,
)
from modelrollout.cli.shadow_figures import ShadowFigures

pytestmark = pytest.mark.unit

AT = datetime(2025, 6, 1, 12, tzinfo=UTC)


def spec(strategy: dict[str, Any], replicas: int = 4) -> ModelDeploymentSpec:
    return parse_spec(
        {
            "replicas": replicas,
            "model": {"name": "m", "version": "2"},
            "template": {"spec": {"containers": [{"name": "s", "image": "i"}]}},
            "strategy": strategy,
        }
    )


CANARY = spec(
    {
        "canary": {
            "steps": [
                {"setWeight": 25},
                {"pause": {"duration": "90s"}},
                {"setWeight": 50},
                {"pause": {"duration": "2m"}},
                {"pause": {}},
            ]
        }
    }
)
CANARY_STEPS = [
    "1. setWeight 25%",
    "2. pause 90s",
    "3. setWeight 50%",
    "4. pause 2m",
    "5. pause (until promote)",
]


def rolling(step: int | None, **fields: Any) -> ModelDeploymentStatus:
    base: dict[str, Any] = {
        "phase": "Progressing",
        "stable_revision": "blue1",
        "stable_version": "1",
        "canary_revision": "green2",
        "canary_version": "2",
        "current_step": step,
    }
    return ModelDeploymentStatus(**{**base, **fields})


def marked(lines: list[str]) -> list[str]:
    """The lines carrying the current-stage marker, without it."""
    return [line.strip().removeprefix("-> ") for line in lines if line.strip().startswith("->")]


@pytest.mark.parametrize(
    ("status", "current"),
    [
        pytest.param(ModelDeploymentStatus(phase="Healthy"), None, id="idle: nothing marked"),
        pytest.param(
            ModelDeploymentStatus(phase="Healthy", current_step=2),
            None,
            id="a leftover step index without a rollout is not marked",
        ),
        pytest.param(rolling(0), "1. setWeight 25%", id="first step"),
        pytest.param(rolling(1), "2. pause 90s", id="timed pause"),
        pytest.param(rolling(4), "5. pause (until promote)", id="indefinite pause"),
        pytest.param(rolling(5), None, id="all steps done: promoting"),
        pytest.param(rolling(None), None, id="rollout without a step yet"),
    ],
)
def test_canary_steps_mark_the_current_one(
    status: ModelDeploymentStatus, current: str | None
) -> None:
    lines = step_lines(CANARY, status)
    assert [line.strip().removeprefix("-> ") for line in lines] == CANARY_STEPS
    assert marked(lines) == ([current] if current else [])


def test_blue_green_has_no_canary_steps() -> None:
    assert step_lines(spec({"blueGreen": {}}), rolling(1)) == []


def test_canary_has_no_blue_green_stages() -> None:
    assert bluegreen_lines("fraud", CANARY, rolling(1), {}) == []


MANUAL = spec({"blueGreen": {"previewReplicas": 1, "scaleDownDelaySeconds": 30}}, replicas=3)
AUTO = spec(
    {"blueGreen": {"previewReplicas": 2, "autoPromotionSeconds": 120, "scaleDownDelaySeconds": 0}},
    replicas=3,
)
SWITCHED = ModelDeploymentStatus(
    phase="Healthy",
    stable_revision="green2",
    stable_version="2",
    history=(
        HistoryEntry(number=2, revision="green2", version="2", promoted_at=AT),
        HistoryEntry(number=1, revision="blue1", version="1", promoted_at=AT - timedelta(days=1)),
    ),
    pending_scale_downs=(
        PendingScaleDown(revision="blue1", not_before=AT + timedelta(seconds=30)),
    ),
)


@pytest.mark.parametrize(
    ("bg", "status", "replicas", "current", "also"),
    [
        pytest.param(
            MANUAL, rolling(0), {"green2": (0, 1), "blue1": (3, 3)},
            "1. preview: 1 replica of green2 behind fraud-preview (0/1 ready)",
            ["2. awaiting promotion (`promote` to switch traffic)",
             "3. scale green2 to 3 replicas before the switch",
             "4. switch fraud to green2",
             "5. scale down blue1 30s after the switch"],
            id="preview starting",
        ),
        pytest.param(
            MANUAL, rolling(1, phase="Paused", step_started_at=AT), {"green2": (1, 1)},
            "2. awaiting promotion (`promote` to switch traffic)",
            ["1. preview: 1 replica of green2 behind fraud-preview"],
            id="preview ready, waiting for promote",
        ),
        pytest.param(
            AUTO, rolling(1, step_started_at=AT), {"green2": (2, 2)},
            "2. auto-promotion at 2025-06-01T12:02:00Z",
            ["1. preview: 2 replicas of green2 behind fraud-preview",
             "5. scale down blue1 at the switch"],
            id="auto-promotion time",
        ),
        pytest.param(
            AUTO,
            rolling(1, phase="Paused", step_started_at=AT, paused_at=AT + timedelta(seconds=30)),
            {},
            "2. auto-promotion timer frozen with 90s left (paused; `resume`)",
            [],
            id="paused: the timer is frozen",
        ),
        pytest.param(
            AUTO, rolling(0), {},
            "1. preview: 2 replicas of green2 behind fraud-preview (0/0 ready)",
            ["2. auto-promotion 2m after the preview is ready"],
            id="auto-promotion not started before the preview is ready",
        ),
        pytest.param(
            MANUAL, rolling(2), {"green2": (2, 3)},
            "3. scale green2 to 3 replicas before the switch (2/3 ready)",
            [],
            id="scaling to full",
        ),
        pytest.param(
            MANUAL, rolling(3, step_started_at=AT), {"green2": (3, 3), "blue1": (3, 3)},
            "4. switched fraud to green2 at 2025-06-01T12:00:00Z; "
            "verifying on all traffic until 2025-06-01T12:00:30Z",
            ["5. scale down blue1 once the switch is verified (not before 2025-06-01T12:00:30Z)"],
            id="switched; verifying while the old revision stays up",
        ),
        pytest.param(
            MANUAL, SWITCHED, {"green2": (3, 3), "blue1": (3, 3)},
            "5. scale down blue1 at 2025-06-01T12:00:30Z",
            ["1. preview: 1 replica of green2 behind fraud-preview",
             "4. switched fraud to green2 at 2025-06-01T12:00:00Z"],
            id="switched; the old revision waits for its scale-down",
        ),
    ],
)  # fmt: skip
def test_blue_green_stages(
    bg: ModelDeploymentSpec,
    status: ModelDeploymentStatus,
    replicas: dict[str, tuple[int, int]],
    current: str,
    also: list[str],
) -> None:
    lines = bluegreen_lines("fraud", bg, status, replicas)
    assert len(lines) == 5
    assert marked(lines) == [current]
    for line in also:
        assert any(shown.strip() == line for shown in lines), (line, lines)


SHADOWED = spec(
    {
        "blueGreen": {
            "previewReplicas": 1,
            "autoPromotionSeconds": 120,
            "shadow": {"percent": 50, "duration": "5m"},
        }
    },
    replicas=4,
)


def test_a_blue_green_shadow_phase_is_a_stage_of_its_own_with_its_timer() -> None:
    status = rolling(1, stage="Shadowing", step_started_at=AT)
    lines = bluegreen_lines("fraud", SHADOWED, status, {"green2": (2, 2)})
    assert len(lines) == 6
    assert marked(lines) == [
        "2. shadow: blue1 copies 50% of its requests to green2 for 5m, answers seen by no "
        "client; until 2025-06-01T12:05:00Z"
    ]
    # The preview has pods for the copies: half of 4, more than previewReplicas.
    assert lines[0].strip() == "1. preview: 2 replicas of green2 behind fraud-preview"
    assert lines[2].strip() == "3. auto-promotion 2m after the preview is ready"


def test_blue_green_idle_lists_the_stages_unmarked() -> None:
    idle = ModelDeploymentStatus(phase="Healthy", stable_revision="blue1", stable_version="1")
    lines = bluegreen_lines("fraud", MANUAL, idle, {})
    assert marked(lines) == []
    assert lines[0].strip() == "1. preview: 1 replica of the new revision behind fraud-preview"
    assert lines[3].strip() == "4. switch fraud to the new revision"


def test_a_blue_green_stage_this_plugin_does_not_know_shows_the_operators_reason() -> None:
    # A stage number from a newer operator and a status field this version has
    # never heard of.
    status = ModelDeploymentStatus.model_validate(
        {
            "phase": "Progressing",
            "stableRevision": "blue1",
            "canaryRevision": "green2",
            "canaryVersion": "2",
            "currentStep": 7,
            "reason": "SomethingNew",
            "somethingNew": {"until": "2025-06-01T12:05:00Z"},
        }
    )
    lines = bluegreen_lines("fraud", MANUAL, status, {})
    assert marked(lines) == ["stage 7: SomethingNew (see Message)"]
    assert len(lines) == 6


def test_status_shows_blue_green_stages_and_a_spec_the_operator_has_not_seen() -> None:
    body = {"metadata": {"name": "fraud", "namespace": "ml", "generation": 4}}
    status = rolling(1, phase="Paused", observed_generation=3, step_started_at=AT)
    text = "\n".join(status_lines(body, MANUAL, status, {}, []))
    assert "Stages:\n" in text and "-> 2. awaiting promotion" in text
    assert "Steps:" not in text and "Weight:" not in text, "blue/green has no weight"
    assert "New:       green2  version 2" in text
    assert "spec generation 4 not acted on yet (phase and message are for generation 3)" in text
    current = {"metadata": {**body["metadata"], "generation": 3}}
    assert "Observed:" not in "\n".join(status_lines(current, MANUAL, status, {}, []))


def test_history_lists_revisions_newest_first_and_marks_the_serving_one() -> None:
    status = ModelDeploymentStatus(
        stable_revision="aaa111",
        history=(
            HistoryEntry(number=3, revision="aaa111", version="1", promoted_at=AT, source="Undo"),
            HistoryEntry(
                number=2, revision="bbb222", version="2", promoted_at=AT - timedelta(hours=1)
            ),
            HistoryEntry(
                number=1, revision="aaa111", version="1", promoted_at=AT - timedelta(hours=2)
            ),
        ),
    )
    header, *rows = history_lines(status)
    assert header.split() == ["REVISION", "HASH", "VERSION", "SOURCE", "PROMOTED"]
    assert [row.split() for row in rows] == [
        ["3", "aaa111", "1", "Undo", "2025-06-01", "12:00:00", "(serving)"],
        ["2", "bbb222", "2", "Spec", "2025-06-01", "11:00:00"],
        ["1", "aaa111", "1", "Spec", "2025-06-01", "10:00:00", "(serving)"],
    ]


def test_list_shows_each_object_and_fills_what_status_lacks() -> None:
    rows = [
        ("fraud", rolling(1, canary_weight=25, message="step 2/4: pause")),
        ("penguins", ModelDeploymentStatus(phase="Healthy", stable_version="7")),
        ("new", ModelDeploymentStatus()),
    ]
    header, *lines = list_lines(rows)
    assert header.split() == ["NAME", "PHASE", "STABLE", "CANARY", "WEIGHT", "MESSAGE"]
    assert [line.split(maxsplit=5) for line in lines] == [
        ["fraud", "Progressing", "1", "2", "25%", "step 2/4: pause"],
        ["penguins", "Healthy", "7", "-", "0%"],
        ["new", "Pending", "-", "-", "0%"],
    ]
    assert list_lines([]) == [header]


def test_history_shows_each_revisions_registry_version_dataset_and_metrics() -> None:
    registered = RegistryVersion(
        name="churn-model",
        version="3",
        sha256="a" * 64,
        dataset_sha256="d" * 64,
        dataset_rows=1200,
        metrics={"accuracy": 0.9412, "f1_macro": 0.93},
    )
    status = ModelDeploymentStatus(
        stable_revision="aaa111",
        history=(
            HistoryEntry(
                number=2, revision="aaa111", version="3", promoted_at=AT, registry=registered
            ),
            HistoryEntry(number=1, revision="bbb222", version="1", promoted_at=AT),
        ),
    )
    _, first, registry, second = history_lines(status)
    assert first.split()[:3] == ["2", "aaa111", "3"]
    assert registry.split() == [
        "models:/churn-model/3",
        "dataset",
        "sha256:dddddddddddd",
        "(1200",
        "rows)",
        "accuracy=0.9412",
        "f1_macro=0.93",
    ]
    assert second.split()[:3] == ["1", "bbb222", "1"]


def test_status_says_what_a_tracked_alias_resolved_to_and_where_the_champion_is() -> None:
    raw = {
        "replicas": 2,
        "model": {"name": "churn", "registry": {"name": "churn-model", "alias": "candidate"}},
        "template": {"spec": {"containers": [{"name": "server", "image": "srv:1"}]}},
        "strategy": {"canary": {"steps": [{"setWeight": 50}]}},
    }
    spec = parse_spec(raw)
    assert model_source(spec, ModelDeploymentStatus()) == (
        "registry churn-model alias candidate (not resolved yet)"
    )
    resolved = RegistryStatus(
        alias="candidate",
        resolved=RegistryVersion(name="churn-model", version="4", sha256="a" * 64),
        resolved_at=AT,
        champion_alias="champion",
        champion_version="3",
    )
    assert model_source(spec, ModelDeploymentStatus(registry=resolved)) == (
        "registry churn-model alias candidate -> version 4 (champion -> 3)"
    )


def test_status_shows_the_shadow_phase_and_the_champions_figures() -> None:
    canary = spec({"canary": {"steps": [{"shadow": {"percent": 25, "duration": "10m"}}]}})
    status = rolling(0, reason="Shadowing")
    figures = ShadowFigures(
        pods=3,
        pods_read=2,
        outcomes=Counter({"compared": 40, "dropped": 3}),
        agreement=0.975,
        compared_rows=400,
        window_rows=400,
        window_agreement=0.96,
        window_psi=0.02,
        window_mean_abs_difference=None,
        mirroring_pods=2,
        problems=("fraud-abc-1: Forbidden",),
    )
    lines = shadow_lines(canary, status, figures)
    assert lines == [
        "Shadow:    revision blue1 copies 25% of its requests to green2 (version 2) for 10m; "
        "no client sees its answers",
        "           copies: 40 compared, 0 failed, 0 timeout, 3 dropped (read from 2/3 ready "
        "champion pods, 2 mirroring now)",
        "           agreement: 0.9750 of 400 compared rows so far",
        "           last window: 400 rows, agreement 0.9600, prediction PSI 0.0200 (largest of "
        "the pods)",
        "           not read: fraud-abc-1: Forbidden",
    ]
    assert shadow_lines(canary, rolling(1), figures) == [], "after the shadow step: nothing"


def test_status_says_what_the_owned_hpa_keeps_and_how_many_pods_answer() -> None:
    scaled = parse_spec(
        {
            **CANARY.model_dump(by_alias=True, exclude_none=True, mode="json"),
            "replicas": 5,
            "autoscaling": {"minReplicas": 2, "maxReplicas": 12},
        }
    )
    body = {"metadata": {"name": "fraud", "namespace": "ml", "generation": 1}}
    status = rolling(0, replicas=5)
    text = "\n".join(status_lines(body, scaled, status, {}, []))
    assert "Autoscale: HPA fraud keeps 2-12; total now 5, 5 pods answering clients" in text
    assert "Autoscale:" not in "\n".join(status_lines(body, CANARY, status, {}, []))
