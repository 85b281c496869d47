"""Reading specs, durations, revisions and commands; errors name the field to fix."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from modelrollout.api import (
    Command,
    ModelDeploymentStatus,
    SpecError,
    dump_status,
    merge_patch,
    parse_command,
    parse_duration,
    parse_spec,
    parse_status,
    revision_of,
    spec_revision,
    status_patch,
)
from modelrollout.api import names as n

pytestmark = pytest.mark.unit

VALID: dict[str, Any] = {
    "replicas": 2,
    "model": {"name": "fraud", "version": "7"},
    "template": {"spec": {"containers": [{"name": "server", "image": "srv:1"}]}},
    "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {"duration": "1m"}}]}},
}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("1m30s", 90), ("500ms", 0.5), ("1h", 3600), ("1.5s", 1.5), ("2h0m1s", 7201)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["30", "s", "1d", "-1s", "1m 30s", ""])
def test_malformed_durations_are_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="1m30s"):
        parse_duration(text)


def with_change(path: str, value: Any) -> dict[str, Any]:
    raw = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    target: Any = raw
    for key in parents:
        target = target[int(key)] if key.isdigit() else target.setdefault(key, {})
    target[last] = value
    return raw


@pytest.mark.parametrize(
    ("path", "value", "field", "hint"),
    [
        ("replicas", -1, "spec.replicas", "greater than or equal to 0"),
        ("replicaz", 3, "spec.replicaz", "Extra inputs are not permitted"),
        ("model.version", 7, "spec.model.version", "valid string"),
        ("model.sha256", "abc", "spec.model.sha256", "should match pattern"),
        ("template", {"spec": {"containers": []}}, "spec.template", "at least one container"),
        (
            "strategy.canary.steps",
            [{"setWeight": 101}],
            "spec.strategy.canary.steps[0].setWeight",
            "100",
        ),
        ("strategy.canary.steps", [{"pause": {"duration": "10"}}], "duration", "should match"),
        ("strategy.canary.steps", [{"setWeight": 1, "pause": {}}], "steps[0]", "exactly one of"),
        ("strategy.blueGreen", {}, "spec.strategy", "exactly one of strategy.canary"),
        (
            "analysis",
            {"metrics": [{"name": "e", "query": "q", "max": 1}]},
            "spec.analysis",
            "prometheus",
        ),
        (
            "analysis",
            {"onNoData": "Promote"},
            "spec.analysis.onNoData",
            "'Pause', 'Fail' or 'Ignore'",
        ),
        ("revisionHistoryLimit", 51, "spec.revisionHistoryLimit", "50"),
        (
            "analysis",
            {
                "prometheus": {"address": "http://p:9090"},
                "metrics": [{"name": "e", "provider": "datadog", "query": "q", "max": 1}],
            },
            "spec.analysis.metrics[0].provider",
            "'prometheus'",
        ),
        (
            "notifications",
            {"webhook": {"urlSecretRef": {"name": "hooks", "key": "url"}, "format": "teams"}},
            "spec.notifications.webhook.format",
            "'json' or 'slack'",
        ),
        ("notifications", {"webhook": {}}, "spec.notifications.webhook.urlSecretRef", "required"),
    ],
)
def test_spec_errors_name_the_field_and_the_fix(
    path: str, value: Any, field: str, hint: str
) -> None:
    with pytest.raises(SpecError) as raised:
        parse_spec(with_change(path, value))
    message = str(raised.value)
    assert field in message
    assert hint in message


def test_revision_covers_model_and_template_only() -> None:
    spec = parse_spec(VALID)
    assert len(spec_revision(spec)) == 10
    assert spec_revision(parse_spec(with_change("replicas", 9))) == spec_revision(spec)
    assert spec_revision(parse_spec(with_change("model.version", "8"))) != spec_revision(spec)
    reordered = {"spec": {"containers": [{"image": "srv:1", "name": "server"}]}}
    assert revision_of(spec.model, reordered) == spec_revision(spec)


def test_names_of_design_section_2() -> None:
    assert n.deployment_name("fraud", "abc") == "fraud-abc"
    assert (n.service_name("fraud"), n.canary_service_name("fraud")) == ("fraud", "fraud-canary")
    assert n.preview_service_name("fraud") == "fraud-preview"
    assert n.selector_labels("fraud", "abc") == {
        "modelrollout.io/deployment": "fraud",
        "modelrollout.io/revision": "abc",
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json", "not JSON"),
        ('{"id": "1", "action": "launch"}', "action"),
        ('{"id": "1", "action": "abort", "full": true}', "promote only"),
        ('{"id": "1", "action": "promote", "toRevision": 2}', "undo only"),
        ('{"action": "abort"}', "id"),
    ],
)
def test_bad_commands_are_refused(text: str, problem: str) -> None:
    with pytest.raises(SpecError, match=problem):
        parse_command(text)


def test_command_round_trips_through_its_annotation() -> None:
    command = Command(id="u1", action="undo", to_revision=3)
    assert parse_command(command.to_annotation()) == command
    assert '"toRevision":3' in command.to_annotation()


def test_status_round_trips_and_patches_remove_cleared_fields() -> None:
    status = ModelDeploymentStatus.model_validate(
        {"phase": "Progressing", "canaryRevision": "abc", "canaryWeight": 25, "futureField": 1}
    )
    raw = dump_status(status)
    assert parse_status(raw) == status
    done = status.model_copy(
        update={"phase": "Healthy", "canary_revision": None, "canary_weight": 0}
    )
    patch = status_patch(raw, done)
    assert patch == {"phase": "Healthy", "canaryRevision": None, "canaryWeight": 0}
    assert status_patch(raw, status) == {}


def test_merge_patch_recurses_into_objects() -> None:
    old = {"analysis": {"a": {"failures": 1, "value": 2.0}, "b": {"failures": 0}}}
    new = {"analysis": {"a": {"failures": 2}}}
    assert merge_patch(old, new) == {"analysis": {"a": {"failures": 2, "value": None}, "b": None}}
