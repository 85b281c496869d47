"""Builds the Deployment of each revision a ModelDeployment runs, its retraining
Jobs, its shadow ConfigMap and the HPA of spec.autoscaling. Pure: dicts in, dicts
out, so every name, label and injected variable is unit-tested here.

Names, labels and env follow api/names.py (docs/architecture.md, "Names").
Every object carries an owner reference to its ModelDeployment, so deleting it
deletes everything it made.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from modelrollout.api import ModelDeploymentSpec
from modelrollout.api import names as n
from modelrollout.api.autoscaling import Autoscaling
from modelrollout.api.ownership import Owner, common_labels
from modelrollout.rollout import Mirror, RunRetrainingJob


def revision_labels(md_name: str, revision: str, model_version: str) -> dict[str, str]:
    return {
        **common_labels(md_name),
        n.LABEL_REVISION: revision,
        n.LABEL_MODEL_VERSION: model_version,
    }


def injected_env(spec: ModelDeploymentSpec, revision: str) -> list[dict[str, str]]:
    """MODEL_URI and MODEL_SHA256 only when the spec gives them: an empty value
    would read as "an artifact with no digest" rather than "none given". A
    registry model arrives here resolved (models:/NAME/VERSION, its recorded
    digest) with the registry's address for the server."""
    values = {
        n.ENV_MODEL_NAME: spec.model.name,
        n.ENV_MODEL_VERSION: spec.model.release,
        n.ENV_MODEL_URI: spec.model.uri,
        n.ENV_MODEL_SHA256: spec.model.sha256,
        n.ENV_REVISION: revision,
        n.ENV_MLFLOW_TRACKING_URI: spec.model.registry.uri if spec.model.registry else None,
    }
    return [{"name": k, "value": v} for k, v in values.items() if v is not None]


def _with_injected_env(container: dict[str, Any], env: list[dict[str, str]]) -> dict[str, Any]:
    # The operator's values win over a same-named variable in the template: the
    # server must serve exactly the model the revision hash was computed from.
    replaced = {*n.INJECTED_ENV, *(e["name"] for e in env)}
    kept = [e for e in container.get("env") or [] if e.get("name") not in replaced]
    return {**container, "env": [*kept, *env]}


def _with_shadow_mount(container: dict[str, Any]) -> dict[str, Any]:
    # Every revision mounts it: the champion of a later rollout's shadow step is a
    # revision made before anyone wrote that step.
    mounts = [m for m in container.get("volumeMounts") or [] if m.get("name") != n.SHADOW_VOLUME]
    mount = {"name": n.SHADOW_VOLUME, "mountPath": n.SHADOW_MOUNT_PATH, "readOnly": True}
    return {**container, "volumeMounts": [*mounts, mount]}


def shadow_config(owner: Owner, mirror: Mirror | None, url: str) -> dict[str, Any]:
    """The `<md>-shadow` ConfigMap: what the model servers mirror (percent 0: nothing)
    and to which address (the canary Service's ClusterIP: pods need no DNS)."""
    body = (
        {"percent": 0}
        if mirror is None
        else {
            "percent": mirror.percent,
            "champion": mirror.champion,
            "challenger": mirror.challenger,
            "url": url,
        }
    )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": n.shadow_config_name(owner.name),
            "namespace": owner.namespace,
            "labels": common_labels(owner.name),
            "ownerReferences": [owner.reference()],
        },
        "data": {n.SHADOW_CONFIG_KEY: json.dumps(body, sort_keys=True)},
    }


def autoscaling_digest(autoscaling: Autoscaling) -> str:
    """What the HPA was made from, for its annotation (api/names.py)."""
    text = json.dumps(autoscaling.hpa_spec(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def autoscaler(owner: Owner, autoscaling: Autoscaling) -> dict[str, Any]:
    """The HPA `<md>`: autoscaling/v2, targeting the ModelDeployment's scale subresource."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": n.autoscaler_name(owner.name),
            "namespace": owner.namespace,
            "labels": common_labels(owner.name),
            "annotations": {n.AUTOSCALING_ANNOTATION: autoscaling_digest(autoscaling)},
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": n.API_VERSION, "kind": n.KIND, "name": owner.name},
            **autoscaling.hpa_spec(),
        },
    }


def read_mirror(data: Mapping[str, str] | None) -> Mirror | None:
    """The Mirror a `<md>-shadow` ConfigMap's data says; None for none or unreadable."""
    try:
        body = json.loads((data or {}).get(n.SHADOW_CONFIG_KEY) or "{}")
        percent = int(body.get("percent") or 0)
        if percent <= 0:
            return None
        return Mirror(percent, str(body["champion"]), str(body["challenger"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def revision_deployment(
    owner: Owner, spec: ModelDeploymentSpec, revision: str, replicas: int
) -> dict[str, Any]:
    """The Deployment `<md>-<revision>` running the spec's model and template.

    The MODEL_* variables go into every container of the template: the model
    server may sit beside sidecars, and a sidecar knowing the model is harmless.
    """
    labels = revision_labels(owner.name, revision, spec.model.release)
    template = copy.deepcopy(spec.template)
    metadata = template.setdefault("metadata", {})
    metadata["labels"] = {**(metadata.get("labels") or {}), **labels}
    pod_spec = template["spec"]
    env = injected_env(spec, revision)
    pod_spec["containers"] = [
        _with_shadow_mount(_with_injected_env(c, env)) for c in pod_spec["containers"]
    ]
    pod_spec["volumes"] = [
        *(v for v in pod_spec.get("volumes") or [] if v.get("name") != n.SHADOW_VOLUME),
        {
            "name": n.SHADOW_VOLUME,
            # Optional: the ConfigMap exists only once a shadow step has run.
            "configMap": {"name": n.shadow_config_name(owner.name), "optional": True},
        },
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": n.deployment_name(owner.name, revision),
            "namespace": owner.namespace,
            "labels": labels,
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": n.selector_labels(owner.name, revision)},
            # One revision never changes its template, so its own ReplicaSet
            # history is useless; revisions are what `undo` goes back to.
            "revisionHistoryLimit": 0,
            "template": template,
        },
    }


def retraining_labels(md_name: str, number: int) -> dict[str, str]:
    """Not the Services' LABEL_DEPLOYMENT: a training pod never receives traffic."""
    return {
        n.LABEL_NAME: md_name,
        n.LABEL_MANAGED_BY: n.MANAGER,
        n.LABEL_RETRAINING_OF: md_name,
        n.LABEL_RETRAINING_RUN: str(number),
    }


def retraining_selector(md_name: str) -> str:
    return f"{n.LABEL_RETRAINING_OF}={md_name},{n.LABEL_MANAGED_BY}={n.MANAGER}"


def retraining_job(
    owner: Owner, spec: ModelDeploymentSpec, run: RunRetrainingJob
) -> dict[str, Any]:
    """The Job of one retraining run, from spec.retraining.job, with the run's
    MODELROLLOUT_RETRAIN_* env in every container (the operator's values win)."""
    retraining = spec.retraining
    assert retraining is not None, "a retraining Job without spec.retraining"
    labels = retraining_labels(owner.name, run.number)
    template = copy.deepcopy(retraining.job.template)
    metadata = template.setdefault("metadata", {})
    metadata["labels"] = {**(metadata.get("labels") or {}), **labels}
    pod_spec = template["spec"]
    # A Job's pods must not restart in place; a retry is backoffLimit's, as a new pod.
    pod_spec["restartPolicy"] = "Never"
    env = [{"name": k, "value": v} for k, v in run.env]
    names = {e["name"] for e in env}
    containers = []
    for container in pod_spec["containers"]:
        kept = [e for e in container.get("env") or [] if e.get("name") not in names]
        containers.append(
            {
                # Where no outcome was written (a crash), the log's tail says why.
                "terminationMessagePolicy": "FallbackToLogsOnError",
                **container,
                "env": [*kept, *env],
            }
        )
    pod_spec["containers"] = containers
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": run.name,
            "namespace": owner.namespace,
            "labels": labels,
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "backoffLimit": retraining.job.backoff_limit,
            "activeDeadlineSeconds": retraining.job.active_deadline_seconds,
            "template": template,
        },
    }
