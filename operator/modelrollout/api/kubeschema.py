"""What the CRD says that pydantic's JSON Schema cannot: CEL rules and list types.

The models are the source of crds/modeldeployment.yaml (modelrollout.api.crd
generates it), so a rule the API server enforces is declared in spec.py or
status.py, next to the field or model it guards, with these helpers through
pydantic's `json_schema_extra`: validation ignores those keys, the generator
copies them into the CRD.
"""

from __future__ import annotations

from typing import Final

from pydantic.config import JsonDict, JsonValue

VALIDATIONS: Final = "x-kubernetes-validations"


def cel(*rules: tuple[str, str]) -> JsonDict:
    """`x-kubernetes-validations` from (CEL rule, message) pairs.

    The message is what `kubectl apply` prints when the rule fails; keep it the
    same words as the model's validator so a file checked by the CLI and an
    object refused by the API server say the same thing.
    """
    validations: list[JsonValue] = [{"rule": rule, "message": message} for rule, message in rules]
    return {VALIDATIONS: validations}


def list_map(*keys: str) -> JsonDict:
    """A list whose items are unique by `keys` (the API server refuses duplicates,
    and server-side apply merges items by key instead of replacing the list)."""
    map_keys: list[JsonValue] = list(keys)
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": map_keys}
