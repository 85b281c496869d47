"""Raw Kubernetes objects (dicts) to models, with one error type for every problem."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from modelrollout.api.errors import SpecError, spec_error_from
from modelrollout.api.spec import ModelDeploymentSpec
from modelrollout.api.status import ModelDeploymentStatus


def parse_spec(raw: Mapping[str, Any] | None) -> ModelDeploymentSpec:
    """The spec of a ModelDeployment, or a SpecError naming each bad field."""
    if raw is None:
        raise SpecError(["spec: missing"])
    try:
        return ModelDeploymentSpec.model_validate(dict(raw))
    except ValidationError as error:
        raise spec_error_from(error, "spec") from error


def parse_status(raw: Mapping[str, Any] | None) -> ModelDeploymentStatus:
    """The status the operator wrote before (empty when there is none).

    Raises SpecError when someone edited status into a shape no operator
    wrote; the caller decides whether to start over from an empty status.
    """
    if not raw:
        return ModelDeploymentStatus()
    try:
        return ModelDeploymentStatus.model_validate(dict(raw))
    except ValidationError as error:
        raise spec_error_from(error, "status") from error


def parse_object(obj: Mapping[str, Any]) -> tuple[ModelDeploymentSpec, ModelDeploymentStatus]:
    """Spec and status of a whole ModelDeployment object."""
    return parse_spec(obj.get("spec")), parse_status(obj.get("status"))


def dump_status(status: ModelDeploymentStatus) -> dict[str, Any]:
    """The status as the API server stores it (camelCase, RFC 3339 times, no nulls)."""
    return status.model_dump(by_alias=True, exclude_none=True, mode="json")


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns `old` into `new`; {} when equal.

    A merge patch keeps keys it does not mention, so a field the new status no
    longer has must be sent as null to be removed; lists are replaced whole.
    """
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            nested = merge_patch(before, value)
            if nested:
                patch[key] = nested
        elif value != before or key not in old:
            patch[key] = value
    return patch


def status_patch(old_raw: Mapping[str, Any] | None, new: ModelDeploymentStatus) -> dict[str, Any]:
    """The merge patch for the status subresource; {} means nothing to write."""
    return merge_patch(old_raw or {}, dump_status(new))
