"""The revision hash: which Deployment a spec runs in.

Like a Deployment's pod-template-hash, it names `<md-name>-<revision>` and
labels its pods; it covers exactly what changes the running server (the model
and the pod template), so a change of replicas or analysis is not a rollout.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from modelrollout.api.spec import ModelDeploymentSpec, ModelRef

REVISION_LENGTH = 10


def revision_of(model: ModelRef, template: Mapping[str, Any]) -> str:
    """10 hex characters of sha256 over the canonical JSON of model + template."""
    canonical = json.dumps(
        {
            # exclude_none: adding an optional field to ModelRef later must not
            # change the revision of every existing object.
            "model": model.model_dump(by_alias=True, exclude_none=True),
            "template": template,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:REVISION_LENGTH]


def spec_revision(spec: ModelDeploymentSpec) -> str:
    return revision_of(spec.model, spec.template)
