"""The CRD files on disk are what the API models generate (`make crds`), and the
translation from pydantic's JSON Schema keeps what the models mean."""

from __future__ import annotations

import difflib
from datetime import datetime
from typing import Any, Literal

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

from modelrollout.api import ModelDeploymentStatus, crd
from modelrollout.api.crd import CRDGenerationError, crd_manifest, crd_yaml, structural_schema
from modelrollout.api.kubeschema import cel, list_map
from modelrollout.api.spec import SpecModel
from modelrollout.devenv import crds
from modelrollout.devenv.tools import REPO_ROOT

pytestmark = pytest.mark.unit


def test_the_crd_files_are_the_generated_ones() -> None:
    stale = crds.stale_files()
    expected = crds.expected_files()
    diffs = []
    for path in stale[:1]:  # the chart copy would repeat the same diff
        old = path.read_text().splitlines() if path.exists() else []
        new = expected.get(path, "").splitlines()
        name = str(path.relative_to(REPO_ROOT))
        diffs += list(difflib.unified_diff(old, new, name, f"{name} (generated)", lineterm=""))
    listed = "\n".join(f"  {path.relative_to(REPO_ROOT)}" for path in stale)
    assert not stale, (
        "the CRD files differ from what the API models in operator/modelrollout/api/ "
        f"generate: run `make crds`\n{listed}\n" + "\n".join(diffs[:60])
    )


def test_the_yaml_is_deterministic_and_reads_back_as_the_manifest() -> None:
    text = crd_yaml()
    assert text == crd_yaml()
    assert text.startswith("# The ModelDeployment CustomResourceDefinition")
    assert "do not edit" in text.split("\napiVersion:")[0]
    assert yaml.safe_load(text) == crd_manifest()


class Thing(SpecModel):
    """A docstring for Python readers, not for `kubectl explain`."""

    model_config = ConfigDict(json_schema_extra=cel(("has(self.a) || has(self.b)", "set a or b")))

    a: int | None = Field(default=None, gt=0, description="A's own words.")
    b: Literal["x", "y"] | None = None
    port: int | str = "http"


class Parent(SpecModel):
    thing: Thing = Field(description="The field's words win.")
    things: tuple[Thing, ...] = Field(default=(), max_length=3, json_schema_extra=list_map("b"))
    kept: Thing = Thing(a=1)
    rebuilt_from_nested_defaults: Thing = Thing()
    labels: dict[str, Any] = Field(default_factory=dict)


def test_the_translation_to_a_structural_schema() -> None:
    schema = structural_schema(Parent, defaults=True)
    thing = schema["properties"]["thing"]
    assert thing["description"] == "The field's words win."
    assert thing["x-kubernetes-validations"] == [
        {"rule": "has(self.a) || has(self.b)", "message": "set a or b"}
    ]
    assert "required" not in thing, "an optional field is not required"
    a, b, port = (thing["properties"][name] for name in ("a", "b", "port"))
    assert a == {
        "type": "integer",
        "minimum": 0,
        "exclusiveMinimum": True,
        "description": "A's own words.",
    }, "no null, no default None; JSON Schema's exclusiveMinimum is OpenAPI's flag"
    assert b == {"type": "string", "enum": ["x", "y"]}
    assert port == {"x-kubernetes-int-or-string": True, "default": "http"}
    things = schema["properties"]["things"]
    assert "default" not in things, "an empty list is not written as a default"
    assert things["maxItems"] == 3
    assert (things["x-kubernetes-list-type"], things["x-kubernetes-list-map-keys"]) == (
        "map",
        ["b"],
    )
    assert schema["properties"]["kept"]["default"] == {"a": 1, "port": "http"}
    assert schema["properties"]["rebuiltFromNestedDefaults"]["default"] == {}
    assert schema["properties"]["labels"] == {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    assert schema["required"] == ["thing"]
    text = yaml.safe_dump(schema)
    for absent in ("title", "additionalProperties", "anyOf", "$ref", "null", "docstring"):
        assert absent not in text


class StatusWithAStage(ModelDeploymentStatus):
    """As another change may extend the status: the CRD follows without edits."""

    stage: Literal["Analysing", "Waiting"] | None = Field(
        default=None, description="What the rollout does now."
    )
    stage_deadline: datetime | None = None
    stage_count: int = 0


def test_a_new_status_field_reaches_the_crd_without_a_default() -> None:
    properties = structural_schema(StatusWithAStage, defaults=False)["properties"]
    assert properties["stage"] == {
        "type": "string",
        "enum": ["Analysing", "Waiting"],
        "description": "What the rollout does now.",
    }
    assert properties["stageDeadline"] == {"type": "string", "format": "date-time"}
    assert properties["stageCount"] == {"type": "integer"}
    assert "default" not in yaml.safe_dump(properties)


class Ambiguous(BaseModel):
    value: int | list[str] = 0


class FixedPair(BaseModel):
    pair: tuple[int, str]


@pytest.mark.parametrize(
    ("model", "named"), [(Ambiguous, "Ambiguous.value"), (FixedPair, "FixedPair.pair")]
)
def test_what_the_crd_cannot_state_fails_the_generation_naming_the_field(
    model: type[BaseModel], named: str
) -> None:
    with pytest.raises(CRDGenerationError, match=named):
        structural_schema(model, defaults=True)


def test_a_printer_column_must_name_a_status_field(monkeypatch: pytest.MonkeyPatch) -> None:
    columns = (*crd.PRINTER_COLUMNS, ("Mood", "string", None, ".status.mood"))
    monkeypatch.setattr(crd, "PRINTER_COLUMNS", columns)
    with pytest.raises(CRDGenerationError, match="status has no field mood"):
        crd_manifest()
