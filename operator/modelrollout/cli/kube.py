"""What the kubectl-plugin commands share: credentials, the namespace, reading a
ModelDeployment, and turning API errors into sentences a user can act on."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from modelrollout.api import names as n
from modelrollout.cli.shadow_figures import ShadowFigures, combine, read_pod
from modelrollout.kube.observer import list_pods, replica_failures
from modelrollout.kube.pods import container_port, pod_cause, revision_pods
from modelrollout.rollout import PodsObservation

# The shadow block reads every champion pod one by one: bounded so that `status
# --watch` on a large revision stays a few requests, and a stuck pod a short wait.
MAX_SHADOW_PODS = 20
SHADOW_READ_TIMEOUT_SECONDS = 3.0


class CliError(Exception):
    """A failure to report as one line on stderr, with exit code `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def add_target_arguments(parser: argparse.ArgumentParser, *, name: bool = True) -> None:
    if name:
        parser.add_argument("name", help="the ModelDeployment")
    parser.add_argument("-n", "--namespace", help="default: the kubeconfig context's namespace")
    parser.add_argument("--kubeconfig", help="default: $KUBECONFIG or ~/.kube/config")
    parser.add_argument("--context", help="kubeconfig context to use")


@dataclass
class Session:
    api: client.ApiClient
    namespace: str

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def get(self, name: str) -> dict[str, Any]:
        try:
            body = cast(
                "dict[str, Any]",
                self.custom.get_namespaced_custom_object(
                    n.GROUP, n.VERSION, self.namespace, n.PLURAL, name
                ),
            )
        except ApiException as error:
            raise explain(error, "get", name, self.namespace) from None
        return body

    def list_all(self) -> list[dict[str, Any]]:
        try:
            listing = cast(
                "dict[str, Any]",
                self.custom.list_namespaced_custom_object(
                    n.GROUP, n.VERSION, self.namespace, n.PLURAL
                ),
            )
        except ApiException as error:
            raise explain(error, "list", None, self.namespace) from None
        items: list[dict[str, Any]] = listing.get("items", [])
        return items

    def list_every_namespace(self) -> list[dict[str, Any]]:
        """Every ModelDeployment in the cluster, or CliError: a caller that must know
        all of them (prune-registry) gets no partial answer."""
        try:
            listing = cast(
                "dict[str, Any]",
                self.custom.list_cluster_custom_object(n.GROUP, n.VERSION, n.PLURAL),
            )
        except ApiException as error:
            if error.status in (401, 403):
                raise CliError(
                    f"not allowed to list {n.PLURAL} in all namespaces: your account needs "
                    f"RBAC 'list' on {n.PLURAL}.{n.GROUP} cluster-wide (the API server said: "
                    f"{_reason(error)})",
                    code=4,
                ) from None
            raise explain(error, "list", None, "*") from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise CliError(f"the Kubernetes API server cannot be reached: {error}") from None
        items: list[dict[str, Any]] = listing.get("items", [])
        return items

    def annotate(self, name: str, key: str, value: str) -> None:
        try:
            self.custom.patch_namespaced_custom_object(
                n.GROUP, n.VERSION, self.namespace, n.PLURAL, name,
                {"metadata": {"annotations": {key: value}}},
            )  # fmt: skip
        except ApiException as error:
            raise explain(error, "patch", name, self.namespace) from None

    def replicas(self, name: str) -> dict[str, tuple[int, int]]:
        """revision -> (ready, wanted) of each Deployment of `name`; {} when unreadable."""
        try:
            deployments = (
                client.AppsV1Api(self.api)
                .list_namespaced_deployment(
                    self.namespace, label_selector=f"{n.LABEL_DEPLOYMENT}={name}"
                )
                .items
            )
        except ApiException:
            return {}  # pod counts are a courtesy, like events
        replicas: dict[str, tuple[int, int]] = {}
        for d in deployments:
            labels = (d.metadata.labels if d.metadata else None) or {}
            ready = (d.status.ready_replicas if d.status else None) or 0
            wanted = (d.spec.replicas if d.spec else None) or 0
            replicas[labels.get(n.LABEL_REVISION, "")] = (ready, wanted)
        return replicas

    def pods(self, name: str) -> dict[str, PodsObservation]:
        """revision -> what the pods of each revision of `name` say (as the
        operator's observe step reads them); {} when unreadable."""
        try:
            deployments = (
                client.AppsV1Api(self.api)
                .list_namespaced_deployment(
                    self.namespace, label_selector=f"{n.LABEL_DEPLOYMENT}={name}"
                )
                .items
            )
            pods = list_pods(
                client.CoreV1Api(self.api), self.namespace, f"{n.LABEL_DEPLOYMENT}={name}"
            )
        except ApiException:
            return {}  # like pod counts and events, a courtesy
        return revision_pods(pods, replica_failures(deployments))

    def shadow_figures(
        self, name: str, champion: str, challenger_version: str, port: int | str
    ) -> ShadowFigures:
        """The champion revision's shadow figures, read from the /metrics of each of
        its ready pods (at most MAX_SHADOW_PODS) through the API server's pod proxy;
        a pod that cannot be read is named in `problems`, never an error."""
        core = client.CoreV1Api(self.api)
        selector = f"{n.LABEL_DEPLOYMENT}={name},{n.LABEL_REVISION}={champion}"
        try:
            pods = [p for p in list_pods(core, self.namespace, selector) if pod_cause(p) is None]
        except ApiException as error:
            return combine([], 0, (f"pods: {_reason(error)}",))
        read, problems = [], []
        for pod in pods[:MAX_SHADOW_PODS]:
            pod_name = pod["metadata"]["name"]
            number = container_port(pod, port)
            if number is None:
                problems.append(f"{pod_name}: no container port {port!r}")
                continue
            try:
                response: Any = core.connect_get_namespaced_pod_proxy_with_path(
                    f"{pod_name}:{number}",
                    self.namespace,
                    "metrics",
                    _preload_content=False,
                    _request_timeout=SHADOW_READ_TIMEOUT_SECONDS,
                )
                read.append(read_pod(response.data.decode(), challenger_version))
            except ApiException as error:
                problems.append(f"{pod_name}: {_reason(error)}")
            except (urllib3.exceptions.HTTPError, ValueError, UnicodeDecodeError) as error:
                problems.append(f"{pod_name}: {type(error).__name__}: {error}")
        return combine(read, len(pods), tuple(problems))

    def events(self, name: str, limit: int) -> list[client.CoreV1Event]:
        try:
            events = (
                client.CoreV1Api(self.api)
                .list_namespaced_event(
                    self.namespace,
                    field_selector=f"involvedObject.kind={n.KIND},involvedObject.name={name}",
                )
                .items
            )
        except ApiException:
            return []  # events are a courtesy; their absence is not an error
        events.sort(key=_event_time)
        return list(events[-limit:])


def _event_time(event: client.CoreV1Event) -> datetime:
    # eventTime has microseconds; lastTimestamp only seconds.
    when = event.event_time or event.last_timestamp
    if when is None and event.metadata is not None:
        when = event.metadata.creation_timestamp
    return when or datetime.min.replace(tzinfo=UTC)


def connect(args: argparse.Namespace) -> Session:
    try:
        contexts, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=args.kubeconfig
        )
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=args.kubeconfig, context=args.context
        )
        chosen = next((c for c in contexts if c["name"] == args.context), active)
        default_namespace = chosen.get("context", {}).get("namespace") or "default"
    except config.ConfigException:
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            raise CliError(
                "no Kubernetes credentials: set KUBECONFIG or pass --kubeconfig"
            ) from None
        default_namespace = "default"
    return Session(api=client.ApiClient(), namespace=args.namespace or default_namespace)


def explain(error: ApiException, verb: str, name: str | None, namespace: str) -> CliError:
    what = f"modeldeployment {name!r}" if name else "modeldeployments"
    if error.status == 404:
        if name is None:
            return CliError(
                f"the ModelDeployment API is not installed ({n.CRD_NAME}); install the CRDs"
            )
        return CliError(f"{what} not found in namespace {namespace!r}")
    if error.status in (401, 403):
        return CliError(
            f"not allowed to {verb} {what} in namespace {namespace!r}: your account needs "
            f"RBAC '{verb}' on {n.PLURAL}.{n.GROUP} (the API server said: {_reason(error)})",
            code=4,
        )
    return CliError(f"could not {verb} {what}: {error.status} {_reason(error)}")


def _reason(error: ApiException) -> str:
    import json

    try:
        return str(json.loads(error.body or "").get("message", error.reason))
    except (TypeError, ValueError, AttributeError):
        return str(error.reason)
