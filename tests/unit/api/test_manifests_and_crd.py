"""The examples parse, every invalid fixture is rejected, and the CRD agrees with the models."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from modelrollout.api import (
    DURATION_PATTERN,
    Hold,
    ModelDeploymentStatus,
    ReadinessWait,
    SpecError,
    names,
    parse_spec,
)
from modelrollout.api.spec import MAX_PROGRESS_DEADLINE_SECONDS
from modelrollout.api.status import HoldReason
from modelrollout.rollout import spec_problems

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
CRD = yaml.safe_load((ROOT / "crds" / "modeldeployment.yaml").read_text())
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
INVALID = sorted((ROOT / "tests" / "fixtures" / "invalid").glob("*.yaml"))
SCHEMA = CRD["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
SPEC_SCHEMA = SCHEMA["properties"]["spec"]


def model_deployments(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] == names.KIND]


def test_there_are_examples_and_invalid_fixtures() -> None:
    assert {p.name for p in EXAMPLES} >= {"canary.yaml", "bluegreen.yaml"}
    assert len(INVALID) >= 5


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_parses_and_the_operator_accepts_it(path: Path) -> None:
    documents = model_deployments(path)
    assert documents
    for document in documents:
        assert document["apiVersion"] == names.API_VERSION
        spec = parse_spec(document["spec"])
        assert spec_problems(spec) == []


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_fixture_is_rejected_and_says_what_the_api_server_will(path: Path) -> None:
    first_line = path.read_text().splitlines()[0]
    assert first_line.startswith("# expect: "), "first line names the API server's message"
    (document,) = model_deployments(path)
    with pytest.raises(SpecError) as raised:
        parse_spec(document["spec"])
    assert all(problem.startswith("spec") for problem in raised.value.problems)


def test_crd_names_match_the_design() -> None:
    assert CRD["metadata"]["name"] == names.CRD_NAME
    assert CRD["spec"]["group"] == names.GROUP
    assert CRD["spec"]["names"]["kind"] == names.KIND
    assert CRD["spec"]["names"]["plural"] == names.PLURAL
    assert tuple(CRD["spec"]["names"]["shortNames"]) == names.SHORT_NAMES
    version = CRD["spec"]["versions"][0]
    assert version["name"] == names.VERSION
    assert version["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    }
    columns = [c["jsonPath"] for c in version["additionalPrinterColumns"]]
    assert columns == [
        ".status.phase",
        ".status.stableVersion",
        ".status.canaryVersion",
        ".status.canaryWeight",
        ".metadata.creationTimestamp",
    ]


def test_crd_defaults_are_the_models_defaults() -> None:
    minimal = {
        "model": {"name": "m", "version": "1"},
        "template": {"spec": {"containers": [{"name": "s", "image": "i"}]}},
        "strategy": {"blueGreen": {}},
        "analysis": {"metrics": []},
    }
    spec = parse_spec(minimal)
    props = SPEC_SCHEMA["properties"]
    analysis = props["analysis"]["properties"]
    blue_green = props["strategy"]["properties"]["blueGreen"]["properties"]
    assert spec.replicas == props["replicas"]["default"]
    assert spec.revision_history_limit == props["revisionHistoryLimit"]["default"]
    deadline = props["progressDeadlineSeconds"]
    assert spec.progress_deadline_seconds == deadline["default"] == 600
    # The model's bounds (tests/unit/rollout/test_progress_deadline.py tries them).
    assert (deadline["minimum"], deadline["maximum"]) == (1, MAX_PROGRESS_DEADLINE_SECONDS)
    assert spec.rollback.automatic == props["rollback"]["properties"]["automatic"]["default"]
    assert spec.service.port == props["service"]["properties"]["port"]["default"]
    assert spec.service.target_port == props["service"]["properties"]["targetPort"]["default"]
    assert spec.analysis is not None
    assert spec.analysis.interval == analysis["interval"]["default"]
    assert spec.analysis.failure_limit == analysis["failureLimit"]["default"]
    assert spec.analysis.consecutive_error_limit == analysis["consecutiveErrorLimit"]["default"]
    assert spec.analysis.on_no_data == analysis["onNoData"]["default"]
    assert spec.strategy.blue_green is not None
    assert spec.strategy.blue_green.preview_replicas == blue_green["previewReplicas"]["default"]
    assert (
        spec.strategy.blue_green.scale_down_delay_seconds
        == blue_green["scaleDownDelaySeconds"]["default"]
    )


def test_crd_duration_pattern_is_the_parsers() -> None:
    steps = SPEC_SCHEMA["properties"]["strategy"]["properties"]["canary"]["properties"]["steps"]
    pause = steps["items"]["properties"]["pause"]["properties"]["duration"]
    interval = SPEC_SCHEMA["properties"]["analysis"]["properties"]["interval"]
    assert pause["pattern"] == interval["pattern"] == DURATION_PATTERN


def lists_and_strings_under_cel(schema: dict[str, Any], under_rule: bool = False) -> list[str]:
    """Unbounded lists below a CEL rule would blow the API server's cost estimate."""
    unbounded = []
    here = under_rule or "x-kubernetes-validations" in schema
    if here and schema.get("type") == "array" and "maxItems" not in schema:
        unbounded.append(str(schema.get("description", "array")))
    for child in schema.get("properties", {}).values():
        unbounded += lists_and_strings_under_cel(child, here)
    if "items" in schema:
        unbounded += lists_and_strings_under_cel(schema["items"], here)
    return unbounded


def test_lists_checked_by_cel_are_bounded() -> None:
    assert lists_and_strings_under_cel(SPEC_SCHEMA) == []


def null_keys(node: Any, path: str = "") -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            found += [f"{path}.{key}"] if value is None else null_keys(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += null_keys(value, f"{path}[{index}]")
    return found


@pytest.mark.parametrize("path", sorted((ROOT / "crds").glob("*.yaml")), ids=lambda p: p.name)
def test_no_crd_field_is_null(path: Path) -> None:
    """A comma in an unquoted value of a YAML flow mapping (`{description: a, b}`)
    ends the value and makes `b` a key without one. The API server drops that key,
    so the stored CRD differs from the file, and a server-side apply of the file
    over a client-side `kubectl apply` of the same file conflicts on .spec.versions."""
    assert [key for doc in yaml.safe_load_all(path.read_text()) for key in null_keys(doc)] == []


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def test_every_status_field_is_in_the_crd() -> None:
    """The API server prunes status fields its schema does not name: a field the
    models have and the CRD lacks would be dropped on every write."""
    properties = SCHEMA["properties"]["status"]["properties"]
    missing = [
        _camel(name)
        for name in ModelDeploymentStatus.model_fields
        if _camel(name) not in properties
    ]
    assert missing == []
    for field, model in (("readinessWait", ReadinessWait), ("hold", Hold)):
        nested = properties[field]["properties"]
        assert sorted(nested) == sorted(_camel(name) for name in model.model_fields)


def test_crd_hold_reasons_are_the_models() -> None:
    hold = SCHEMA["properties"]["status"]["properties"]["hold"]["properties"]["reason"]
    assert tuple(hold["enum"]) == get_args(HoldReason)


SCHEMA_KEYWORDS = frozenset(
    {
        "type", "format", "description", "properties", "items", "required", "enum",
        "default", "minimum", "maximum", "minLength", "maxLength", "pattern", "minItems",
        "maxItems", "additionalProperties", "nullable",
    }
)  # fmt: skip


def unknown_keywords(schema: dict[str, Any], path: str = "") -> list[str]:
    """A key that is no schema keyword (a YAML flow mapping split at a comma in a
    description, say) makes the API server refuse the whole CRD."""
    found = [
        f"{path}: {key}"
        for key in schema
        if key not in SCHEMA_KEYWORDS and not str(key).startswith("x-kubernetes-")
    ]
    for name, child in (schema.get("properties") or {}).items():
        found += unknown_keywords(child, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            found += unknown_keywords(schema[key], f"{path}[{key}]")
    return found


def test_every_schema_key_is_a_schema_keyword() -> None:
    assert unknown_keywords(SCHEMA) == []
