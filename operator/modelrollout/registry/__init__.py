"""The operator's side of an MLflow model registry: resolve what a
ModelDeployment names (a version, or the version behind an alias) and move the
champion alias to what it promoted (README: "Model registry"); list and delete a
model's versions for `prune-registry` (README: "Pruning the registry")."""

from modelrollout.registry.mlflow import (
    DATASET_ROWS_TAG,
    DATASET_SHA256_TAG,
    METRIC_TAG_PREFIX,
    SHA256_TAG,
    TASK_TAG,
    MlflowRegistry,
    RegistryError,
    RegistryUnavailableError,
    VersionRejectedError,
)

__all__ = [
    "DATASET_ROWS_TAG",
    "DATASET_SHA256_TAG",
    "METRIC_TAG_PREFIX",
    "SHA256_TAG",
    "TASK_TAG",
    "MlflowRegistry",
    "RegistryError",
    "RegistryUnavailableError",
    "VersionRejectedError",
]
