"""Applies a Plan's actions to the cluster, idempotently.

Each action states the end it wants (a replica count, a selector), so applying
one twice, or after a crash half-way through a plan, is harmless: "already
exists" and "already gone" are successes. Status is written by the caller after
the actions, so a restarted operator that lost a plan simply plans it again.
"""

from __future__ import annotations

from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelrollout.api import ModelDeploymentSpec
from modelrollout.api import names as n
from modelrollout.api.ownership import Owner
from modelrollout.kube.manifests import (
    autoscaler,
    retraining_job,
    revision_deployment,
    shadow_config,
)
from modelrollout.kube.observer import owned_by
from modelrollout.rollout import (
    Action,
    DeleteAutoscaler,
    DeleteRetrainingJob,
    DeleteRevision,
    EnsureAutoscaler,
    EnsureRevision,
    Mirror,
    Observed,
    RouteService,
    RunRetrainingJob,
    ScaleRevision,
    SetHeaderRoutes,
    SetMirror,
)
from modelrollout.traffic.router import Backends, Router

NOT_FOUND, CONFLICT = 404, 409


class Executor:
    def __init__(self, api: client.ApiClient, router: Router) -> None:
        self._apps = client.AppsV1Api(api)
        self._batch = client.BatchV1Api(api)
        self._autoscaling = client.AutoscalingV2Api(api)
        self._core = client.CoreV1Api(api)
        self._router = router

    def apply(
        self,
        owner: Owner,
        spec: ModelDeploymentSpec,
        observed: Observed,
        actions: tuple[Action, ...],
    ) -> None:
        for action in actions:
            match action:
                case EnsureRevision(revision=revision, replicas=replicas):
                    self._ensure_revision(owner, spec, observed, revision, replicas)
                case ScaleRevision(revision=revision, replicas=replicas):
                    self._scale(owner, revision, replicas, missing_ok=True)
                case DeleteRevision(revision=revision):
                    self._delete_revision(owner, revision)
                case RouteService(role=role, revision=revision, weights=weights):
                    backends = Backends.pinned(revision) if revision else Backends(weights)
                    self._router.set_route(owner, spec, role, backends)
                case SetHeaderRoutes(routes=routes, revision=revision):
                    self._router.set_header_routes(owner, spec, routes, revision)
                case SetMirror(mirror=mirror):
                    self._set_mirror(owner, spec, mirror)
                case RunRetrainingJob():
                    self._run_job(owner, spec, action)
                case DeleteRetrainingJob(name=name):
                    self._delete_job(owner, name)
                case EnsureAutoscaler():
                    self._ensure_autoscaler(owner, spec)
                case DeleteAutoscaler():
                    self._delete_autoscaler(owner)

    def _ensure_revision(
        self,
        owner: Owner,
        spec: ModelDeploymentSpec,
        observed: Observed,
        revision: str,
        replicas: int,
    ) -> None:
        if observed.revision(revision) is not None:
            self._scale(owner, revision, replicas, missing_ok=False)
            return
        try:
            self._apps.create_namespaced_deployment(
                owner.namespace,
                # The client serializes plain manifests as they are.
                cast(Any, revision_deployment(owner, spec, revision, replicas)),
            )
        except ApiException as error:
            if error.status != CONFLICT:
                raise
            # Made by an earlier plan whose status write was lost: just scale it.
            self._scale(owner, revision, replicas, missing_ok=False)

    def _scale(self, owner: Owner, revision: str, replicas: int, *, missing_ok: bool) -> None:
        try:
            self._apps.patch_namespaced_deployment_scale(
                n.deployment_name(owner.name, revision),
                owner.namespace,
                {"spec": {"replicas": replicas}},
            )
        except ApiException as error:
            if not (missing_ok and error.status == NOT_FOUND):
                raise

    def _delete_revision(self, owner: Owner, revision: str) -> None:
        try:
            self._apps.delete_namespaced_deployment(
                n.deployment_name(owner.name, revision),
                owner.namespace,
                propagation_policy="Background",
            )
        except ApiException as error:
            if error.status != NOT_FOUND:
                raise

    def _set_mirror(self, owner: Owner, spec: ModelDeploymentSpec, mirror: Mirror | None) -> None:
        url = ""
        if mirror is not None:
            canary = self._core.read_namespaced_service(
                n.canary_service_name(owner.name), owner.namespace
            )
            address = canary.spec.cluster_ip if canary.spec else None
            url = f"http://{address}:{spec.service.port}"
        body = shadow_config(owner, mirror, url)
        try:
            self._core.create_namespaced_config_map(owner.namespace, cast(Any, body))
        except ApiException as error:
            if error.status != CONFLICT:
                raise
            self._core.patch_namespaced_config_map(
                n.shadow_config_name(owner.name), owner.namespace, {"data": body["data"]}
            )

    def _ensure_autoscaler(self, owner: Owner, spec: ModelDeploymentSpec) -> None:
        assert spec.autoscaling is not None, "EnsureAutoscaler without spec.autoscaling"
        body = autoscaler(owner, spec.autoscaling)
        name = body["metadata"]["name"]
        try:
            self._autoscaling.create_namespaced_horizontal_pod_autoscaler(
                owner.namespace, cast(Any, body)
            )
            return
        except ApiException as error:
            if error.status != CONFLICT:
                raise
        found = self._autoscaling.read_namespaced_horizontal_pod_autoscaler(name, owner.namespace)
        if not owned_by(found.metadata, owner):
            return  # someone's own, made meanwhile: the next observation reports it
        # null removes the metrics a previous spec.autoscaling had (the HPA's default then).
        wanted = {"metrics": None, **body["spec"]}
        self._autoscaling.patch_namespaced_horizontal_pod_autoscaler(
            name,
            owner.namespace,
            {"metadata": {"annotations": body["metadata"]["annotations"]}, "spec": wanted},
        )

    def _delete_autoscaler(self, owner: Owner) -> None:
        try:
            self._autoscaling.delete_namespaced_horizontal_pod_autoscaler(
                n.autoscaler_name(owner.name), owner.namespace
            )
        except ApiException as error:
            if error.status != NOT_FOUND:
                raise

    def _run_job(self, owner: Owner, spec: ModelDeploymentSpec, run: RunRetrainingJob) -> None:
        try:
            self._batch.create_namespaced_job(
                owner.namespace, cast(Any, retraining_job(owner, spec, run))
            )
        except ApiException as error:
            # Made by an earlier plan whose status write was lost: it runs already.
            if error.status != CONFLICT:
                raise

    def _delete_job(self, owner: Owner, name: str) -> None:
        try:
            # Background: its pod goes too, and the operator does not wait for it.
            self._batch.delete_namespaced_job(
                name, owner.namespace, propagation_policy="Background"
            )
        except ApiException as error:
            if error.status != NOT_FOUND:
                raise
