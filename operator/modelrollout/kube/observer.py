"""Reads what a ModelDeployment owns (its revisions' Deployments, its routes
through the router, its retraining Jobs) into the decision core's `Observed`.
Two list calls per reconcile with Service selectors, whatever the number of
revisions, so the cost of an object stays bounded; a third, of its Jobs, with
spec.retraining; one of its pods only while some revision has fewer available
pods than it asks for (what they say goes to the progress deadline's message,
see pods.py), and one of a finished run's pod, to read how it ended (jobs.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelrollout.api import ModelDeploymentSpec
from modelrollout.api import names as n
from modelrollout.api.ownership import Owner, owned_selector
from modelrollout.kube.jobs import job_observation, with_termination
from modelrollout.kube.manifests import autoscaling_digest, read_mirror, retraining_selector
from modelrollout.kube.pods import replica_failure, revision_pods
from modelrollout.rollout import (
    SERVICE_ROLES,
    AutoscalerState,
    Mirror,
    Observed,
    PodCause,
    PodsObservation,
    RetrainingJobObservation,
    RevisionObservation,
    ServiceRole,
)
from modelrollout.traffic import Router, ServiceSelectorRouter


def owned_by(metadata: client.V1ObjectMeta | None, owner: Owner) -> bool:
    references = (metadata.owner_references if metadata else None) or []
    return any(ref.uid == owner.uid for ref in references)


def _labels(metadata: client.V1ObjectMeta | None) -> dict[str, str]:
    return dict((metadata.labels if metadata else None) or {})


NOT_FOUND = 404


def _mirror(core: client.CoreV1Api, owner: Owner) -> Mirror | None:
    try:
        found = core.read_namespaced_config_map(n.shadow_config_name(owner.name), owner.namespace)
    except ApiException as error:
        if error.status == NOT_FOUND:
            return None
        raise
    return read_mirror(found.data)


FORBIDDEN = 403


def _autoscaler(api: client.ApiClient, owner: Owner, spec: ModelDeploymentSpec) -> AutoscalerState:
    try:
        found = client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler(
            n.autoscaler_name(owner.name), owner.namespace
        )
    except ApiException as error:
        if error.status == NOT_FOUND:
            return "absent"
        if error.status == FORBIDDEN:
            return "forbidden"  # matters only with spec.autoscaling (plan.py says why)
        raise
    if not owned_by(found.metadata, owner):
        return "foreign"
    made_from = ((found.metadata.annotations if found.metadata else None) or {}).get(
        n.AUTOSCALING_ANNOTATION
    )
    wanted = autoscaling_digest(spec.autoscaling) if spec.autoscaling is not None else None
    return "current" if made_from is not None and made_from == wanted else "stale"


def observe(
    api: client.ApiClient,
    owner: Owner,
    spec: ModelDeploymentSpec,
    generation: int,
    annotations: Mapping[str, str],
    router: Router | None = None,
    following: int | None = None,
) -> Observed:
    """`router` reads the routes back; the Service selector router by default.
    `following`: the retraining run status says is active, whose end to read."""
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    selector = owned_selector(owner.name)
    deployments = apps.list_namespaced_deployment(owner.namespace, label_selector=selector).items
    revisions = tuple(
        _revision(d)
        for d in deployments
        if owned_by(d.metadata, owner) and n.LABEL_REVISION in _labels(d.metadata)
    )
    if any(r.available_replicas < r.replicas for r in revisions):
        revisions = _with_pods(core, owner, selector, revisions, deployments)
    routes: dict[ServiceRole, str | None] = {}
    route_weights: dict[ServiceRole, tuple[tuple[str, int], ...]] = {}
    router = router or ServiceSelectorRouter(api)
    for route, backends in router.read_routes(owner, spec).items():
        if route not in SERVICE_ROLES:
            continue
        if len(backends.weights) > 1:  # shares the router could read back
            routes[route] = None  # a split, even one giving a revision 0%
            route_weights[route] = backends.weights
        else:
            routes[route] = backends.revision
    return Observed(
        generation=generation,
        revisions=revisions,
        routes=routes,
        route_weights=route_weights,
        command=annotations.get(n.COMMAND_ANNOTATION),
        retraining_jobs=(
            retraining_jobs(api, owner, following) if spec.retraining is not None else ()
        ),
        name=owner.name,
        route_check=router.route_check(owner, spec),
        mirror=_mirror(core, owner),
        header_routes=router.header_routes(owner, spec),
        autoscaler=_autoscaler(api, owner, spec),
    )


def retraining_jobs(
    api: client.ApiClient, owner: Owner, following: int | None
) -> tuple[RetrainingJobObservation, ...]:
    """This object's retraining Jobs; for run `following` once it has finished,
    also what its pod's training container ended with (the outcome it wrote)."""
    response: Any = client.BatchV1Api(api).list_namespaced_job(  # plain JSON, as list_pods
        owner.namespace, label_selector=retraining_selector(owner.name), _preload_content=False
    )
    found = []
    for job in json.loads(response.data).get("items") or []:
        metadata = job.get("metadata") or {}
        owners = metadata.get("ownerReferences") or []
        if not any(ref.get("uid") == owner.uid for ref in owners):
            continue
        try:
            number = int((metadata.get("labels") or {}).get(n.LABEL_RETRAINING_RUN, ""))
        except ValueError:
            continue
        observation = job_observation(metadata.get("name", ""), number, job)
        if number == following and observation.state != "Running":
            pods = list_pods(
                client.CoreV1Api(api),
                owner.namespace,
                f"{retraining_selector(owner.name)},{n.LABEL_RETRAINING_RUN}={number}",
            )
            observation = with_termination(observation, pods)
        found.append(observation)
    return tuple(found)


def _revision(deployment: client.V1Deployment) -> RevisionObservation:
    labels = _labels(deployment.metadata)
    status = deployment.status
    return RevisionObservation(
        revision=labels[n.LABEL_REVISION],
        version=labels.get(n.LABEL_MODEL_VERSION, ""),
        replicas=(deployment.spec.replicas or 0) if deployment.spec else 0,
        ready_replicas=(status.ready_replicas or 0) if status else 0,
        available_replicas=(status.available_replicas or 0) if status else 0,
        created_at=deployment.metadata.creation_timestamp if deployment.metadata else None,
    )


def _with_pods(
    core: client.CoreV1Api,
    owner: Owner,
    selector: str,
    revisions: tuple[RevisionObservation, ...],
    deployments: list[client.V1Deployment],
) -> tuple[RevisionObservation, ...]:
    listed = list_pods(core, owner.namespace, selector)
    summaries = revision_pods(listed, replica_failures(deployments))
    return tuple(
        replace(r, pods=summaries.get(r.revision, PodsObservation()))
        if r.available_replicas < r.replicas
        else r
        for r in revisions
    )


def list_pods(core: client.CoreV1Api, namespace: str, selector: str) -> list[dict[str, Any]]:
    """The pods `selector` matches, as plain JSON the way the API server sends
    them: pods.py reads the same dicts the tests and `kubectl get -o json` show,
    and no V1Pod objects are built."""
    response: Any = core.list_namespaced_pod(  # urllib3's response, not a V1PodList
        namespace, label_selector=selector, _preload_content=False
    )
    items: list[dict[str, Any]] = json.loads(response.data).get("items") or []
    return items


def replica_failures(deployments: list[client.V1Deployment]) -> dict[str, PodCause]:
    """revision -> why its ReplicaSet could not create pods (ReplicaFailure)."""
    failures = {}
    for deployment in deployments:
        conditions = (deployment.status.conditions if deployment.status else None) or []
        failure = replica_failure(
            {"type": c.type, "status": c.status, "reason": c.reason, "message": c.message}
            for c in conditions
        )
        revision = _labels(deployment.metadata).get(n.LABEL_REVISION)
        if failure is not None and revision is not None:
            failures[revision] = failure
    return failures
