"""The fixed names (docs/architecture.md, "Names"), in one place.

The operator, the CLI, the Helm chart and the tests must agree on these byte for
byte: a label key spelled twice is a label key that drifts.
"""

from __future__ import annotations

import hashlib
from typing import Final

GROUP: Final = "modelrollout.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "ModelDeployment"
PLURAL: Final = "modeldeployments"
SINGULAR: Final = "modeldeployment"
SHORT_NAMES: Final = ("md", "mdep")
CRD_NAME: Final = f"{PLURAL}.{GROUP}"

MANAGER: Final = "modelrollout"

# Pod (and Deployment) labels.
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_DEPLOYMENT: Final = f"{GROUP}/deployment"
LABEL_REVISION: Final = f"{GROUP}/revision"
LABEL_MODEL_VERSION: Final = f"{GROUP}/model-version"
# The operator owns these; a template that sets them would break Service selectors.
RESERVED_LABELS: Final = (
    LABEL_NAME,
    LABEL_MANAGED_BY,
    LABEL_DEPLOYMENT,
    LABEL_REVISION,
    LABEL_MODEL_VERSION,
)

# Retraining Jobs and their pods. Not LABEL_DEPLOYMENT: the Services select on
# that, and a training pod must never receive traffic.
LABEL_RETRAINING_OF: Final = f"{GROUP}/retraining-of"
LABEL_RETRAINING_RUN: Final = f"{GROUP}/retraining-run"

# The CLI writes a manual command here; the operator never edits spec
# (docs/architecture.md, "The status contract").
COMMAND_ANNOTATION: Final = f"{GROUP}/command"

# Environment injected into the model-server container.
ENV_MODEL_NAME: Final = "MODEL_NAME"
ENV_MODEL_VERSION: Final = "MODEL_VERSION"
ENV_MODEL_URI: Final = "MODEL_URI"
ENV_MODEL_SHA256: Final = "MODEL_SHA256"
ENV_REVISION: Final = "MODELROLLOUT_REVISION"
# MLflow's own variable: where a server loading models:/ URIs finds the registry
# (injected only for spec.model.registry).
ENV_MLFLOW_TRACKING_URI: Final = "MLFLOW_TRACKING_URI"
INJECTED_ENV: Final = (
    ENV_MODEL_NAME,
    ENV_MODEL_VERSION,
    ENV_MODEL_URI,
    ENV_MODEL_SHA256,
    ENV_REVISION,
)


def service_name(md_name: str) -> str:
    """The Service clients call."""
    return md_name


# Shadow traffic: the ConfigMap the operator writes and every revision's pods mount
# (optional, so a pod starts before it exists); the model server reads the key.
SHADOW_CONFIG_KEY: Final = "shadow.json"
SHADOW_MOUNT_PATH: Final = "/etc/modelrollout/shadow"
SHADOW_VOLUME: Final = "modelrollout-shadow"


def shadow_config_name(md_name: str) -> str:
    """The ConfigMap telling the model servers what to mirror, and where."""
    return f"{md_name}-shadow"


def autoscaler_name(md_name: str) -> str:
    """The HorizontalPodAutoscaler spec.autoscaling makes (its target: the ModelDeployment)."""
    return md_name


# On that HPA: a digest of the spec.autoscaling it was made from, so that a change is
# seen without comparing with the defaults the API server fills in.
AUTOSCALING_ANNOTATION: Final = f"{GROUP}/autoscaling"


def canary_service_name(md_name: str) -> str:
    """The Service that reaches only the revision being rolled out."""
    return f"{md_name}-canary"


def preview_service_name(md_name: str) -> str:
    """The blue/green preview Service."""
    return f"{md_name}-preview"


def deployment_name(md_name: str, revision: str) -> str:
    """The Deployment that runs one revision."""
    return f"{md_name}-{revision}"


def selector_labels(md_name: str, revision: str | None = None) -> dict[str, str]:
    """Labels a Service selects on: every revision of `md_name`, or one when given."""
    labels = {LABEL_DEPLOYMENT: md_name}
    if revision is not None:
        labels[LABEL_REVISION] = revision
    return labels


# A Job's name is also a label value (batch.kubernetes.io/job-name): 63 at most.
_MAX_JOB_NAME = 63


def retraining_job_name(md_name: str, number: int) -> str:
    """`<md-name>-retrain-<n>`, the name shortened (with a digest, to stay unique)
    where it would pass 63 characters."""
    suffix = f"-retrain-{number}"
    name = md_name + suffix
    if len(name) <= _MAX_JOB_NAME:
        return name
    digest = hashlib.sha256(md_name.encode()).hexdigest()[:8]
    keep = _MAX_JOB_NAME - len(suffix) - len(digest) - 1
    return f"{md_name[:keep].rstrip('-.')}-{digest}{suffix}"
