"""The Kopf registry of the operator: one daemon per ModelDeployment, woken by
watch events, and the settings Kopf runs with.

Why a daemon rather than on.create/on.update handlers: a rollout is a long
process with its own timers (pauses, analysis intervals, delayed scale-downs).
A daemon per object sleeps until the core's next deadline or until a watch
event wakes it, so nothing polls, and Kopf stops every daemon when peering
pauses this replica, so two replicas never both act.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf
from kubernetes import client, config
from prometheus_client import CollectorRegistry

from modelrollout.api import names as n
from modelrollout.api.ownership import ObjectKey
from modelrollout.api.reasons import ANALYSIS_REASONS, Reason
from modelrollout.handlers.peering import PeeringLookup, lookup_peering, peering_mode
from modelrollout.handlers.reconcile import Outcome, reconcile
from modelrollout.handlers.telemetry import Telemetry
from modelrollout.handlers.wakeups import Wakeups
from modelrollout.settings import OperatorSettings

_log = logging.getLogger("modelrollout.operator")

# Watch events often come in bursts (a Deployment's status changes once per
# ready pod); gathering them for a moment turns a burst into one reconcile.
DEBOUNCE_SECONDS = 0.3
# Blocking Kubernetes calls run in this many threads: enough to keep the API
# busy for a thousand objects, few enough not to flood it.
API_THREADS = 8


def load_kube_client() -> client.ApiClient:
    """In-cluster credentials in a pod, else the standard kubeconfig resolution."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()


def build_registry(
    settings: OperatorSettings, telemetry: Telemetry | None = None
) -> kopf.OperatorRegistry:
    """`telemetry` receives every reconcile's outcome; the CLI serves its
    registry on --metrics-port. Without one, the metrics are kept unexported."""
    registry = kopf.OperatorRegistry()
    metrics = telemetry or Telemetry(CollectorRegistry())
    wakeups = Wakeups()
    threads = ThreadPoolExecutor(max_workers=API_THREADS, thread_name_prefix="kube")
    api_holder: dict[str, client.ApiClient] = {}
    # What the last reconcile saw of each object, to ignore the watch event of
    # our own status write (it changes nothing the core reads from the object).
    last_seen: dict[ObjectKey, tuple[Any, Any]] = {}

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # The same resolution as our own client: in-cluster, else kubeconfig.
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Peering (name, priority, standalone) is passed to kopf.run by the CLI;
        # whether it is mandatory depends on the peering object (peering.py). Kopf
        # reads it only once the startup handlers are done.
        # Kubernetes Events carry the core's transitions (kopf.info/warn below).
        # Kopf would also post each per-object log line at INFO as an Event, and it
        # logs every watch handler's success: silencing those INFO lines keeps
        # `kubectl describe` to what matters, while warnings still get through.
        settings.posting.level = logging.INFO
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
        # Watches reconnect every few minutes so a silently broken connection heals.
        settings.watching.server_timeout = 270
        settings.watching.client_timeout = 300
        settings.peering.lifetime = operator_settings.peering_lifetime_seconds
        api = api_holder["api"] = load_kube_client()
        lookup = (
            PeeringLookup()
            if operator_settings.standalone
            else lookup_peering(api, operator_settings)
        )
        mode = peering_mode(operator_settings, lookup)
        settings.peering.mandatory = mode.mandatory
        _log.log(mode.level, mode.message)

    operator_settings = settings

    @kopf.on.cleanup(registry=registry)
    def shutdown(**_: Any) -> None:
        threads.shutdown(wait=False, cancel_futures=True)
        api = api_holder.pop("api", None)
        if api is not None:
            api.close()  # type: ignore[no-untyped-call]

    @kopf.on.event(n.GROUP, n.VERSION, n.PLURAL, registry=registry)
    def object_changed(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> None:
        key = (namespace or "", name)
        seen = (
            body.metadata.get("generation"),
            body.metadata.annotations.get(n.COMMAND_ANNOTATION),
        )
        if last_seen.get(key) != seen:
            wakeups.wake(key)

    @kopf.on.event(
        "apps", "v1", "deployments",
        labels={n.LABEL_MANAGED_BY: n.MANAGER, n.LABEL_DEPLOYMENT: kopf.PRESENT},
        registry=registry,
    )  # fmt: skip
    def revision_changed(labels: kopf.Labels, namespace: str | None, **_: Any) -> None:
        wakeups.wake((namespace or "", labels[n.LABEL_DEPLOYMENT]))

    @kopf.daemon(n.GROUP, n.VERSION, n.PLURAL, registry=registry, cancellation_timeout=10)
    async def rollout_loop(
        body: kopf.Body,
        namespace: str | None,
        name: str,
        stopped: kopf.DaemonStopped,
        **_: Any,
    ) -> None:
        if namespace is None:  # the CRD is namespaced; nothing else reaches here
            return
        key = (namespace, name)
        loop = asyncio.get_running_loop()
        wakeups.register(key)
        backoff = 1.0
        try:
            while not stopped:
                last_seen[key] = (
                    body.metadata.get("generation"),
                    body.metadata.annotations.get(n.COMMAND_ANNOTATION),
                )
                started = time.monotonic()
                try:
                    outcome = await loop.run_in_executor(
                        threads, reconcile, api_holder["api"], namespace, name, operator_settings
                    )
                    if outcome is None:
                        return
                except Exception as error:  # the loop must outlive any failure
                    metrics.record_error(key)
                    _log.error(
                        "%s/%s: reconcile failed, retrying in %.0f s: %s",
                        namespace,
                        name,
                        backoff,
                        error,
                    )
                    kopf.warn(body, reason=Reason.RECONCILE_ERROR, message=str(error)[:1024])
                    delay, backoff = (
                        backoff,
                        min(backoff * 2, operator_settings.max_error_backoff_seconds),
                    )
                else:
                    backoff = 1.0
                    _report(body, outcome)
                    metrics.record(
                        key,
                        outcome.plan.events,
                        outcome.plan.new_status,
                        outcome.verdicts,
                        time.monotonic() - started,
                    )
                    requeue = outcome.plan.requeue_after
                    delay = (
                        operator_settings.resync_seconds
                        if requeue is None
                        else min(requeue, operator_settings.resync_seconds)
                    )
                if await wakeups.sleep(key, delay):
                    await asyncio.sleep(DEBOUNCE_SECONDS)
        finally:
            wakeups.forget(key)
            last_seen.pop(key, None)
            # Deleted, or this replica paused by peering: another one reports it now.
            metrics.forget(key)

    return registry


def _report(body: kopf.Body, outcome: Outcome) -> None:
    plan = outcome.plan
    for event in plan.events:
        if event.type == "Warning":
            kopf.warn(body, reason=event.reason, message=event.message)
        else:
            kopf.info(body, reason=event.reason, message=event.message)
    reason = plan.reason
    if plan.reason_changed and reason.reason not in {event.reason for event in plan.events}:
        # Every decision's reason reaches `kubectl describe`, not only transitions.
        if plan.new_status.phase == "Degraded" or reason.reason in ANALYSIS_REASONS:
            kopf.warn(body, reason=reason.reason, message=reason.message)
        else:
            kopf.info(body, reason=reason.reason, message=reason.message)
    if outcome.status_written:
        _log.info(
            "%s/%s %s: %s", body.meta.namespace, body.meta.name, reason.reason, reason.message
        )
