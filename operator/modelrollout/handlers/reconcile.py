"""One reconcile of one ModelDeployment: read, measure, decide, act, record, notify.

Runs in a worker thread (the Kubernetes client, Prometheus queries and
notification webhooks block; each of the latter is bounded by a timeout). Whatever the object
holds, it never raises for bad content: a spec the operator cannot act on
becomes status Degraded/InvalidSpec; only API failures propagate, and the
caller retries them with back-off.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelrollout.api import (
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    SpecError,
    parse_spec,
    parse_status,
    status_patch,
)
from modelrollout.api import names as n
from modelrollout.api.ownership import Owner
from modelrollout.handlers import registry as model_registry
from modelrollout.handlers.analysis import measure_analysis
from modelrollout.handlers.notify import notify
from modelrollout.kube.errors import namespace_terminating
from modelrollout.kube.executor import Executor
from modelrollout.kube.observer import observe
from modelrollout.registry import RegistryError
from modelrollout.rollout import (
    MetricVerdict,
    Plan,
    invalid_spec,
    plan,
    spec_problems,
    unresolved_model,
)
from modelrollout.settings import OperatorSettings
from modelrollout.traffic import router_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    status_written: bool
    # The measurements this reconcile took (the operator's own metrics count them).
    verdicts: Mapping[str, MetricVerdict] = field(default_factory=dict)


def reconcile(
    api: client.ApiClient,
    namespace: str,
    name: str,
    settings: OperatorSettings | None = None,
) -> Outcome | None:
    """Reconciles the object as the API server has it now; None once it is gone
    (or its namespace is being deleted).

    A fresh read each time (rather than Kopf's cached body) means the plan always
    starts from the status this operator last wrote, never from a stale copy.
    """
    try:
        body = cast(
            "dict[str, Any]",
            client.CustomObjectsApi(api).get_namespaced_custom_object(
                n.GROUP, n.VERSION, namespace, n.PLURAL, name
            ),
        )
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    if body.get("metadata", {}).get("deletionTimestamp"):
        return None  # garbage collection removes what it owns
    try:
        return reconcile_object(api, body, datetime.now(UTC), settings)
    except ApiException as error:
        if not namespace_terminating(error):
            raise
        # Nothing can be created there any more, and the namespace's deletion
        # removes this object too: retrying would only fill the log with 403s.
        logger.info("%s/%s: namespace is being deleted; stopped acting on it", namespace, name)
        return None


def reconcile_object(
    api: client.ApiClient,
    body: Mapping[str, Any],
    now: datetime,
    settings: OperatorSettings | None = None,
) -> Outcome:
    settings = settings or OperatorSettings.from_env()
    metadata = body["metadata"]
    owner = Owner(name=metadata["name"], namespace=metadata["namespace"], uid=metadata["uid"])
    generation = int(metadata.get("generation") or 0)
    raw_status = body.get("status")
    try:
        status = parse_status(raw_status)
    except SpecError as error:
        # Someone edited status into a shape no operator wrote; the Deployments
        # are still there, so planning from empty status adopts them again.
        logger.warning("%s/%s: ignoring unreadable status (%s)", owner.namespace, owner.name, error)
        status = parse_status(None)
    spec: ModelDeploymentSpec | None
    verdicts: Mapping[str, MetricVerdict] = {}
    try:
        spec = parse_spec(body.get("spec"))
    except SpecError as error:
        spec = None
        the_plan = invalid_spec(status, generation, str(error), now)
    else:
        written_spec = spec
        try:
            resolved = model_registry.resolve(spec, status.registry, settings, now)
        except RegistryError as error:
            spec = None  # nothing to act on or to notify about until it resolves
            the_plan = unresolved_model(
                status,
                generation,
                model_registry.reason_of(error),
                f"{error}; what serves is left as it is",
                now,
            )
        else:
            spec = resolved.spec
            the_plan, verdicts = _plan_and_act(
                api, owner, resolved, status, generation, now, metadata
            )
            the_plan = _with_registry(the_plan, written_spec, resolved, settings)
        if written_spec.model.registry is not None:
            the_plan = _polled(the_plan, settings.registry_poll_seconds)
    patch = status_patch(raw_status, the_plan.new_status)
    if patch:
        client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
            n.GROUP, n.VERSION, owner.namespace, n.PLURAL, owner.name, {"status": patch}
        )
    if spec is not None:
        # After the status write: a plan whose write failed is planned (and
        # notified) again, so each rollback or drift is announced once.
        failed = notify(api, owner, spec, the_plan, now)
        the_plan = replace(the_plan, events=the_plan.events + failed)
    return Outcome(plan=the_plan, status_written=bool(patch), verdicts=verdicts)


def _plan_and_act(
    api: client.ApiClient,
    owner: Owner,
    resolved: model_registry.Resolved,
    status: ModelDeploymentStatus,
    generation: int,
    now: datetime,
    metadata: Mapping[str, Any],
) -> tuple[Plan, Mapping[str, MetricVerdict]]:
    spec = resolved.spec
    verdicts: Mapping[str, MetricVerdict] = {}
    # The one router both reads the routes back and sets them.
    router = router_for(api, spec)
    annotations = metadata.get("annotations") or {}
    active = status.retraining.active if status.retraining else None
    following = active.number if active is not None else None
    observed = observe(api, owner, spec, generation, annotations, router, following)
    observed = replace(observed, registry=resolved.version, registry_alias=resolved.alias)
    if not spec_problems(spec):  # an unusable spec is reported, not measured
        verdicts = measure_analysis(api, owner, spec, status, now)
        observed = replace(observed, verdicts=verdicts)
    the_plan = plan(spec, status, observed, now)
    Executor(api, router).apply(owner, spec, observed, the_plan.actions)
    return the_plan, verdicts


def _with_registry(
    the_plan: Plan,
    written: ModelDeploymentSpec,
    resolved: model_registry.Resolved,
    settings: OperatorSettings,
) -> Plan:
    """The plan's status with what the registry resolved to, and the champion alias
    moved to what serves now."""
    if resolved.status is None:
        if the_plan.new_status.registry is None:
            return the_plan
        return replace(
            the_plan, new_status=the_plan.new_status.model_copy(update={"registry": None})
        )
    new_status = the_plan.new_status.model_copy(update={"registry": resolved.status})
    moved = model_registry.move_champion(written, new_status, settings)
    return replace(the_plan, new_status=new_status.model_copy(update={"registry": moved}))


def _polled(the_plan: Plan, poll_seconds: float) -> Plan:
    # Nothing wakes the operator when an alias moves in the registry: it looks again.
    wait = the_plan.requeue_after
    return replace(
        the_plan, requeue_after=poll_seconds if wait is None else min(wait, poll_seconds)
    )
