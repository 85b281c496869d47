"""The Helm chart, for real on the local cluster: it lints, its manifests pass the
API server's own validation (server-side dry-run), it installs, and **the chart's
operator pod** (the operator image, built by `make images`, on the cluster's real
node, with in-cluster credentials through the `kubernetes` Service and the
chart's own ServiceAccount) runs a canary that is promoted and one that is rolled
back, so the chart's RBAC is proven sufficient; a TokenRequest token of the same
ServiceAccount is then refused what the chart does not grant.

The release namespace enforces the `restricted` Pod Security Standard, so the
operator pod is admitted only because its securityContext is hardened. The
tests' Prometheus and webhook receiver listen on loopback; the pod reaches them
through the node's forwarding of just those ports (`network.expose_to_pods`).
"""

from __future__ import annotations

import base64
import filecmp
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from modelrollout.api import names as n
from modelrollout.api import parse_spec
from modelrollout.devenv.tools import REPO_ROOT, ensure_tools
from modelrollout.metrics import templating
from modelrollout.metrics.templating import QueryContext
from modelrollout.settings import OperatorSettings
from support.exporter import QUALITY, MetricsLab, metrics_lab
from support.hooks import Hook, running_hook
from support.kube import ClusterUnderTest, fresh_namespace
from support.realnode import operator_image, reachable_from_pods
from support.rollouts import Rollouts, example, plain_canary
from support.scrape import sample
from support.waiting import wait_for

CHART = REPO_ROOT / "charts" / "modelrollout"
QUERY = f'max({QUALITY}{{model_version="{{{{ version }}}}"}})'
HTTP_FORBIDDEN = re.compile(r"\(403\)|\b403 Forbidden|Forbidden")
RBAC_DENIAL = re.compile(r"cannot \S+ resource")


def helm(kube: ClusterUnderTest, *args: str) -> str:
    result = subprocess.run(
        [str(ensure_tools().helm), *args, "--kubeconfig", str(kube.kubeconfig)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.unit
def test_the_chart_ships_the_top_level_crds_byte_for_byte() -> None:
    top = sorted(p.name for p in (REPO_ROOT / "crds").glob("*.yaml"))
    shipped = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    assert shipped == top, "run `make crds`"
    _, mismatch, errors = filecmp.cmpfiles(REPO_ROOT / "crds", CHART / "crds", top, shallow=False)
    assert not mismatch and not errors, f"{mismatch or errors} differ: run `make crds`"


@pytest.mark.integration
def test_helm_lint_passes_strict() -> None:
    result = subprocess.run(
        [str(ensure_tools().helm), "lint", "--strict", str(CHART)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_the_values_schema_rejects_a_typo() -> None:
    result = subprocess.run(
        [str(ensure_tools().helm), "template", "r", str(CHART), "--set", "replicaCont=2"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0
    assert "replicaCont" in result.stderr


def render(*values: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(ensure_tools().helm), "template", "r", str(CHART), "-n", "mr-system",
         "--include-crds", *values],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    service_account: str


def operator_pod_values(kube: ClusterUnderTest) -> list[str]:
    """The locally built operator image (imported into the node, never pulled), one replica;
    the chart's defaults place it, as a user's would be (only the real node takes
    pods that do not ask for the simulated ones)."""
    repository, tag = operator_image(kube).rsplit(":", 1)
    return [
        "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
        "--set", "image.pullPolicy=Never", "--set", "replicaCount=1",
    ]  # fmt: skip


@contextmanager
def installed(kube: ClusterUnderTest, *values: str) -> Iterator[Release]:
    """The chart installed in a fresh namespace that enforces the `restricted`
    Pod Security Standard, its operator pod Ready (`helm --wait`); uninstalled
    afterwards (its ClusterRoles too)."""
    with fresh_namespace(kube, prefix="mr") as release_namespace:
        client.CoreV1Api(kube.api).patch_namespace(
            release_namespace,
            {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
        )
        name = f"r{uuid.uuid4().hex[:6]}"
        helm(kube, "install", name, str(CHART), "-n", release_namespace, "--wait",
             "--timeout", "180s", *operator_pod_values(kube), *values)  # fmt: skip
        try:
            yield Release(name, release_namespace, f"{name}-modelrollout")
        finally:
            helm(kube, "uninstall", name, "-n", release_namespace, "--wait")


def token_kubeconfig(kube: ClusterUnderTest, release: Release, path: Path) -> Path:
    """A kubeconfig holding a TokenRequest token of the release's ServiceAccount:
    the identity the operator's pod has."""
    token = (
        client.CoreV1Api(kube.api)
        .create_namespaced_service_account_token(
            release.service_account,
            release.namespace,
            client.AuthenticationV1TokenRequest(spec={"expirationSeconds": 3600}),
        )
        .status.token
    )
    admin = yaml.safe_load(kube.kubeconfig.read_text())
    cluster = admin["clusters"][0]
    user = f"system:serviceaccount:{release.namespace}:{release.service_account}"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": user, "user": {"token": token}}],
                "contexts": [{"name": "sa", "context": {"cluster": cluster["name"], "user": user}}],
                "current-context": "sa",
            }
        )
    )
    return path


@dataclass
class OperatorPod:
    """The chart's operator, running as the release's one pod."""

    kube: ClusterUnderTest
    release: Release
    name: str
    ip: str
    metrics_port: int = 8080

    def log(self) -> str:
        core = client.CoreV1Api(self.kube.api)
        return str(core.read_namespaced_pod_log(self.name, self.release.namespace))

    def metrics(self) -> str:
        url = f"http://{self.ip}:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            return str(response.read().decode())


def operator_pod(kube: ClusterUnderTest, release: Release) -> OperatorPod:
    pods = (
        client.CoreV1Api(kube.api)
        .list_namespaced_pod(
            release.namespace, label_selector=f"app.kubernetes.io/instance={release.name}"
        )
        .items
    )
    assert len(pods) == 1, [p.metadata.name for p in pods]
    pod = pods[0]
    assert pod.spec.node_name == kube.cluster.node.name, "the operator runs on the real node"
    assert pod.spec.service_account_name == release.service_account
    return OperatorPod(kube, release, pod.metadata.name, pod.status.pod_ip)


def analysed(prometheus_url: str) -> dict[str, Any]:
    body = example("canary")
    spec = body["spec"]
    spec["replicas"] = 2
    spec["model"]["version"] = "1"
    spec["strategy"]["canary"]["steps"] = [{"setWeight": 50}, {"pause": {"duration": "2s"}}]
    spec["analysis"] = {
        "interval": "2s",
        "failureLimit": 1,
        "consecutiveErrorLimit": 100,
        "onNoData": "Pause",
        "prometheus": {"address": prometheus_url},
        "metrics": [{"name": "quality", "query": QUERY, "min": 0.8}],
    }
    spec["notifications"] = {"webhook": {"urlSecretRef": {"name": "notify", "key": "url"}}}
    return body


def secret(name: str, **data: str) -> client.V1Secret:
    return client.V1Secret(
        metadata=client.V1ObjectMeta(name=name),
        data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    )


def forbidden(call: Any, *args: Any, **kwargs: Any) -> bool:
    try:
        call(*args, **kwargs)
    except ApiException as error:
        return error.status == 403
    return False


def canary_then_rollback(
    rollouts: Rollouts, lab: MetricsLab, prometheus_url: str, hook: Hook
) -> dict[str, float]:
    """Version 2 passes analysis and is promoted; version 3 fails and is rolled
    back, with a notification whose URL comes from a Secret. Returns timings."""
    lab.set_quality("1", 0.95)
    lab.set_quality("2", 0.95)
    lab.set_quality("3", 0.3)
    lab.wait_scraped("3", 0.3)
    body = analysed(prometheus_url)
    name = body["metadata"]["name"]
    started = time.monotonic()
    rollouts.create(body)
    rollouts.wait_phase(name, "Healthy")
    deployed = time.monotonic() - started
    rollouts.patch_spec(name, {"model": {"version": "2"}})
    rollouts.wait_status(
        name, "version 2 promoted", lambda s: s.get("stableVersion") == "2", timeout=120
    )
    promoted = time.monotonic() - started - deployed
    rollouts.wait_phase(name, "Healthy")
    rollouts.patch_spec(name, {"model": {"version": "3"}})
    status = rollouts.wait_phase(name, "Degraded", timeout=120)
    assert status["reason"] == "RolledBack" and status["stableVersion"] == "2"
    assert status["lastRollback"]["metric"] == "quality"
    wait_for(
        lambda: [b for b in hook.bodies() if b.get("reason") == "RolledBack"],
        timeout=30,
        what="the rollback notification (its URL is in a Secret)",
    )
    return {"deploy": deployed, "canary": promoted}


@pytest.mark.integration
def test_namespaced_install_runs_a_canary_and_a_rollback_with_the_charts_serviceaccount(
    crds: ClusterUnderTest, namespace: str, tmp_path: Path
) -> None:
    kube = crds
    core = client.CoreV1Api(kube.api)
    with (
        ExitStack() as stack,
        fresh_namespace(kube, prefix="other") as other,
        running_hook() as hook,
        metrics_lab(tmp_path / "prometheus") as lab,
        installed(
            kube,
            "--set",
            f"watchNamespaces={{{namespace}}}",
            "--set",
            "rbac.secrets.resourceNames={notify}",
        ) as release,
    ):
        hook_url = stack.enter_context(reachable_from_pods(kube, hook.url))
        prometheus_url = stack.enter_context(reachable_from_pods(kube, lab.url))
        core.create_namespaced_secret(namespace, secret("notify", url=hook_url))
        core.create_namespaced_secret(namespace, secret("unrelated", password="s3cret"))
        core.create_namespaced_secret(other, secret("notify", url=hook_url))
        kubeconfig = token_kubeconfig(kube, release, tmp_path / "sa.yaml")
        rollouts = Rollouts(kube, namespace)
        operator = operator_pod(kube, release)
        try:
            timings = canary_then_rollback(rollouts, lab, prometheus_url, hook)
            text = wait_for(
                lambda: (
                    (m := operator.metrics())
                    and "modelrollout_rollouts_rolled_back_total{" in m
                    and m
                ),
                timeout=30,
                what="the rollback in /metrics",
            )
        except BaseException:
            print(f"--- operator log ---\n{operator.log()[-20000:]}")
            raise
        log = operator.log()
        # Any refusal at all: an HTTP 403 as the Kubernetes client or Kopf reports it
        # (not the digits, which a log line's milliseconds can hold).
        refusals = [
            line
            for line in log.splitlines()
            if RBAC_DENIAL.search(line) or HTTP_FORBIDDEN.search(line)
        ]
        assert not refusals, refusals
        md = {"namespace": namespace, "name": "fraud"}
        assert sample(text, "modelrollout_rollouts_started_total", **md) == 2
        assert sample(text, "modelrollout_rollouts_completed_total", **md) == 1
        rolled_back = {**md, "reason": "RolledBack", "metric": "quality"}
        assert sample(text, "modelrollout_rollouts_rolled_back_total", **rolled_back) == 1
        # What ModelRolloutRolledBack reads: when, from status.lastRollback.at.
        at = sample(text, "modelrollout_last_rollback_timestamp_seconds", **rolled_back)
        assert 0 < time.time() - at < 600
        failed = {**md, "metric": "quality", "result": "fail"}
        assert sample(text, "modelrollout_analysis_measurements_total", **failed) >= 2
        passed = {**md, "metric": "quality", "result": "pass"}
        assert sample(text, "modelrollout_analysis_measurements_total", **passed) >= 1
        assert sample(text, "modelrollout_phase", **md, phase="Degraded") == 1

        # Not broader than needed: the same token is refused everything else.
        sa = config.new_client_from_config(config_file=str(kubeconfig))
        try:
            sa_core, sa_apps = client.CoreV1Api(sa), client.AppsV1Api(sa)
            sa_custom = client.CustomObjectsApi(sa)
            assert sa_core.read_namespaced_secret("notify", namespace).data
            refused = {
                "get a Secret it was not granted": forbidden(
                    sa_core.read_namespaced_secret, "unrelated", namespace
                ),
                "list Secrets": forbidden(sa_core.list_namespaced_secret, namespace),
                "get a Secret in another namespace": forbidden(
                    sa_core.read_namespaced_secret, "notify", other
                ),
                "list Deployments in another namespace": forbidden(
                    sa_apps.list_namespaced_deployment, other
                ),
                "create a Service in another namespace": forbidden(
                    sa_core.create_namespaced_service,
                    other,
                    {"metadata": {"name": "x"}, "spec": {"ports": [{"port": 80}]}},
                ),
                "list ModelDeployments in another namespace": forbidden(
                    sa_custom.list_namespaced_custom_object, n.GROUP, n.VERSION, other, n.PLURAL
                ),
                "delete a ModelDeployment": forbidden(
                    sa_custom.delete_namespaced_custom_object,
                    n.GROUP,
                    n.VERSION,
                    namespace,
                    n.PLURAL,
                    "fraud",
                ),
                "list Pods in another namespace": forbidden(sa_core.list_namespaced_pod, other),
                "read a Pod's log": forbidden(sa_core.read_namespaced_pod_log, "any", namespace),
                "list Nodes": forbidden(sa_core.list_node),
                "patch a Deployment's pod template": forbidden(
                    sa_apps.patch_namespaced_deployment,
                    f"fraud-{rollouts.status('fraud')['stableRevision']}",
                    namespace,
                    {"spec": {"template": {"metadata": {"labels": {"x": "y"}}}}},
                ),
                "list cluster-wide peering": forbidden(
                    sa_custom.list_cluster_custom_object, "kopf.dev", "v1", "clusterkopfpeerings"
                ),
            }
        finally:
            sa.close()
        assert all(refused.values()), [what for what, ok in refused.items() if not ok]
    print(
        f"\n[figure] with the chart's ServiceAccount: deployed in {timings['deploy']:.1f} s, "
        f"canary promoted in {timings['canary']:.1f} s"
    )


@pytest.mark.integration
def test_cluster_wide_install_rolls_out_with_the_charts_serviceaccount(
    crds: ClusterUnderTest, namespace: str, tmp_path: Path
) -> None:
    kube = crds
    with installed(kube) as release:
        kubeconfig = token_kubeconfig(kube, release, tmp_path / "sa.yaml")
        rollouts = Rollouts(kube, namespace)
        body = plain_canary("fraud", [{"setWeight": 50}], replicas=2)
        operator = operator_pod(kube, release)
        try:
            rollouts.create(body)
            rollouts.wait_phase("fraud", "Healthy")
            rollouts.patch_spec("fraud", {"model": {"version": "8"}})
            rollouts.wait_status(
                "fraud", "version 8 promoted", lambda s: s.get("stableVersion") == "8"
            )
            rollouts.delete("fraud")  # Kopf's finalizer is removed by the operator itself
            wait_for(
                lambda: (
                    not rollouts.custom.list_namespaced_custom_object(
                        n.GROUP, n.VERSION, namespace, n.PLURAL
                    )["items"]
                ),
                timeout=60,
                what="the ModelDeployment gone",
            )
        except BaseException:
            print(f"--- operator log ---\n{operator.log()[-20000:]}")
            raise
        log = operator.log()
        # Cluster-wide, the operator also sees other tests' namespaces being
        # deleted, whose refusals are 403s too; a missing grant reads
        # `User "system:serviceaccount:..." cannot <verb> resource ...`.
        denials = [line for line in log.splitlines() if RBAC_DENIAL.search(line)]
        assert not denials, denials
        sa = config.new_client_from_config(config_file=str(kubeconfig))
        try:
            sa_core, sa_apps = client.CoreV1Api(sa), client.AppsV1Api(sa)
            refused = {
                "list Secrets": forbidden(sa_core.list_secret_for_all_namespaces),
                "list Namespaces (not needed cluster-wide)": forbidden(sa_core.list_namespace),
                "create a Pod": forbidden(
                    sa_core.create_namespaced_pod,
                    namespace,
                    {
                        "metadata": {"name": "x"},
                        "spec": {"containers": [{"name": "x", "image": "x"}]},
                    },
                ),
                "delete a Namespace": forbidden(sa_core.delete_namespace, namespace),
                "update a Deployment": forbidden(
                    sa_apps.patch_namespaced_deployment, "x", namespace, {"spec": {}}
                ),
                "write a ClusterRole": forbidden(
                    client.RbacAuthorizationV1Api(sa).create_cluster_role,
                    {"metadata": {"name": "escalate"}, "rules": []},
                ),
            }
        finally:
            sa.close()
        assert all(refused.values()), [what for what, ok in refused.items() if not ok]


# The Prometheus Operator's CRDs, for the dry-run of the ServiceMonitor and the
# PrometheusRule: from its Go module through the module proxy (the same path
# the local cluster's binaries take), cached by Go once per machine. The sum is
# go.sum's: a proxy serving other content for this version fails the test.
PROMETHEUS_OPERATOR = "github.com/prometheus-operator/prometheus-operator"
PROMETHEUS_OPERATOR_VERSION = "v0.85.0"
PROMETHEUS_OPERATOR_SUM = "h1:M5xLCLEoaW2IJfnuCwFzzpL+jSVQu3KGT84Pye+fW8s="
MONITORING_KINDS = ("servicemonitors", "prometheusrules")


def prometheus_operator_crds(workdir: Path) -> list[Path]:
    go = shutil.which("go")
    assert go, "Go is needed (as for the local cluster's build) to fetch the Prometheus Operator"
    module = f"{PROMETHEUS_OPERATOR}@{PROMETHEUS_OPERATOR_VERSION}"
    result = subprocess.run(
        [go, "mod", "download", "-json", module],
        cwd=workdir,  # outside any module
        env={**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"},
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    downloaded = json.loads(result.stdout or "{}")
    assert result.returncode == 0, f"go mod download {module}: {downloaded or result.stderr}"
    assert downloaded["Sum"] == PROMETHEUS_OPERATOR_SUM, downloaded
    crd_dir = Path(downloaded["Dir"]) / "example" / "prometheus-operator-crd"
    return [crd_dir / f"monitoring.coreos.com_{kind}.yaml" for kind in MONITORING_KINDS]


@pytest.fixture(scope="module")
def monitoring_crds(
    crds: ClusterUnderTest, tmp_path_factory: pytest.TempPathFactory
) -> ClusterUnderTest:
    """The project's CRDs and the Prometheus Operator's ServiceMonitor and
    PrometheusRule CRDs, established."""
    for manifest in prometheus_operator_crds(tmp_path_factory.mktemp("go")):
        crds.kubectl("apply", "--server-side", "-f", str(manifest))
    names = [f"crd/{kind}.monitoring.coreos.com" for kind in MONITORING_KINDS]
    crds.kubectl("wait", "--for=condition=Established", *names, "--timeout=60s")
    return crds


@pytest.mark.integration
def test_every_rendering_passes_a_server_side_dry_run(
    monitoring_crds: ClusterUnderTest, namespace: str, tmp_path: Path
) -> None:
    """Defaults (cluster-wide) and namespaced with every option on, through the API
    server's validation, the ServiceMonitor and PrometheusRule against the
    Prometheus Operator's own CRDs; their PromQL, and the dashboard's, through
    promtool."""
    renderings = {
        "defaults": render(),
        "namespaced, all options": render(
            "--set",
            f"watchNamespaces={{{namespace}}}",
            "--set",
            "metrics.serviceMonitor.enabled=true",
            "--set",
            "metrics.prometheusRule.enabled=true",
            "--set",
            "dashboard.enabled=true",
            "--set",
            "rbac.secrets.resourceNames={a,b}",
        ),
    }
    promtool_rules: list[dict[str, Any]] = []
    accepted: list[dict[str, Any]] = []
    for what, documents in renderings.items():
        for document in documents:
            if document["metadata"].get("namespace") == "mr-system":
                document["metadata"]["namespace"] = namespace
            for subject in document.get("subjects", []):
                subject["namespace"] = namespace
        manifest = tmp_path / f"{what.replace(' ', '-').replace(',', '')}.yaml"
        manifest.write_text(yaml.safe_dump_all(documents))
        result = kube_dry_run(monitoring_crds, manifest, "-o", "json")
        assert result.returncode == 0, f"{what}:\n{result.stderr}"
        answer = json.loads(result.stdout)
        accepted.extend(answer["items"] if answer["kind"] == "List" else [answer])
        for document in documents:
            if document["kind"] == "PrometheusRule":
                promtool_rules.extend(document["spec"]["groups"])
            if document["kind"] == "ConfigMap" and "modelrollout.json" in document["data"]:
                dashboard = json.loads(document["data"]["modelrollout.json"])
                promtool_rules.append(dashboard_as_rules(dashboard))
    kinds = {d["kind"] for d in accepted}
    assert {"ServiceMonitor", "PrometheusRule", "ConfigMap", "Role", "ClusterRole"} <= kinds
    # The operator's `namespace` label (the ModelDeployment's) must survive the
    # scrape: without honorLabels the Prometheus Operator replaces it with the
    # Service's namespace, and every object's series merge. As the API server
    # stored it, so a field its schema dropped would fail here.
    (monitor,) = [d for d in accepted if d["kind"] == "ServiceMonitor"]
    assert [e.get("honorLabels") for e in monitor["spec"]["endpoints"]] == [True]
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": promtool_rules}))
    checked = subprocess.run(
        ["promtool", "check", "rules", str(rules)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def kube_dry_run(
    kube: ClusterUnderTest, manifest: Path, *more: str
) -> subprocess.CompletedProcess[str]:
    return kube.cluster.kubectl(
        "apply", "--dry-run=server", "--server-side", "--force-conflicts", "-f", str(manifest),
        *more, check=False,
    )  # fmt: skip


def dashboard_query(expr: str) -> str:
    """A panel's PromQL with Grafana's variables given plausible values."""
    return expr.replace("$__range", "1h").replace("$namespace", ".*")


def dashboard_as_rules(dashboard: dict[str, Any]) -> dict[str, Any]:
    """Each panel query as a recording rule, so promtool parses its PromQL."""
    rules = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = dashboard_query(target["expr"])
            rules.append({"record": f"dashboard:panel{panel['id']}{target['refId']}", "expr": expr})
    return {"name": "dashboard", "rules": rules}


# promtool's unit tests of the alerts and of the dashboard's counts. Series are
# sampled every minute from time 0 (Unix time 0, which time() returns); `_` is
# no sample, `stale` the end of a series. `render()` names the release `r` in
# `mr-system`, so the metrics Service (the scrape job) is r-modelrollout-metrics.
JOB = "r-modelrollout-metrics"
MD = {"namespace": "ml", "name": "fraud", "job": JOB, "instance": "10.0.0.1:8080"}
OTHER = {**MD, "name": "churn"}


def series(metric: str, values: str, /, **labels: str) -> dict[str, str]:
    selector = ", ".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{metric}{{{selector}}}", "values": values}


def alert(alertname: str, minute: int, summary: str | None = None, **labels: str) -> dict[str, Any]:
    """`alertname` evaluated at `minute`: firing with `labels` and `summary`, or
    (summary None) not firing at all."""
    expected = (
        [] if summary is None else [{"exp_labels": labels, "exp_annotations": {"summary": summary}}]
    )
    return {"alertname": alertname, "eval_time": f"{minute}m", "exp_alerts": expected}


def failing_reconciles(minutes: int) -> str:
    """modelrollout_reconcile_errors_total of an object whose every reconcile
    fails, sampled each minute: the operator retries after 1, 2, 4 ... s, at
    most max_error_backoff_seconds apart."""
    errors, at, backoff = [], 0.0, 1.0
    while at <= minutes * 60:
        errors.append(at)
        at, backoff = at + backoff, min(backoff * 2, OperatorSettings().max_error_backoff_seconds)
    return " ".join(str(sum(1 for e in errors if e <= m * 60)) for m in range(minutes + 1))


def alert_tests() -> list[dict[str, Any]]:
    """Each alert with the chart's defaults (rolledBackFor 10m, stuckFor 2h,
    driftingFor 15m, operatorDownFor 5m, reconcileErrorsFor 15m)."""
    stamp = "modelrollout_last_rollback_timestamp_seconds"
    rolled_back = {
        "namespace": "ml",
        "name": "fraud",
        "reason": "RolledBack",
        "metric": "error-rate",
    }
    rolled_back_summary = "ModelDeployment ml/fraud rolled back (RolledBack)"
    failed_over = {**rolled_back, "instance": "10.0.0.2:8080", "job": JOB}
    stuck = {"namespace": "ml", "name": "fraud"}
    up = {"job": JOB, "namespace": "mr-system"}
    return [
        {  # The first rollback of fraud at minute 30: its counter appears at 1,
            # which increase() never sees; the timestamp fires for 10 minutes.
            # churn was rolled back long ago, exported again after a restart.
            "interval": "1m",
            "input_series": [
                series(stamp, "_x30 1800x10 stale", **MD, reason="RolledBack", metric="error-rate"),
                # a peering handover at minute 40: the other replica exports it
                series(stamp, "_x40 1800x20", **failed_over),
                series(
                    "modelrollout_rollouts_rolled_back_total",
                    "_x30 1x30",
                    **MD,
                    reason="RolledBack",
                    metric="error-rate",
                ),
                series(stamp, "_x30 60x30", **OTHER, reason="Aborted", metric=""),
            ],
            "alert_rule_test": [
                alert("ModelRolloutRolledBack", 29),
                alert(
                    "ModelRolloutRolledBack",
                    30,
                    rolled_back_summary,
                    **rolled_back,
                    severity="warning",
                ),
                alert(
                    "ModelRolloutRolledBack",
                    39,
                    rolled_back_summary,
                    **rolled_back,
                    severity="warning",
                ),
                alert("ModelRolloutRolledBack", 41),
            ],
        },
        {  # fraud has been rolling out since minute 10; churn finished at minute 70.
            "interval": "1m",
            "input_series": [
                series("modelrollout_rollout_started_timestamp_seconds", "_x10 600x200", **MD),
                series(
                    "modelrollout_rollout_started_timestamp_seconds", "_x10 600x60 stale", **OTHER
                ),
            ],
            "alert_rule_test": [
                alert("ModelRolloutStuck", 129),
                alert(
                    "ModelRolloutStuck",
                    131,
                    "ModelDeployment ml/fraud has been rolling out for more than 2h",
                    **stuck,
                    severity="warning",
                ),
            ],
        },
        {  # fraud drifts from minute 10 on; churn for 10 minutes only.
            "interval": "1m",
            "input_series": [
                series("modelrollout_drifted", "0x10 1x30", **MD),
                series("modelrollout_drifted", "0x10 1x10 0x20", **OTHER),
            ],
            "alert_rule_test": [
                alert("ModelRolloutModelDrifting", 24),
                alert(
                    "ModelRolloutModelDrifting",
                    26,
                    "The stable model of ml/fraud is drifting",
                    **stuck,
                    severity="warning",
                ),
            ],
        },
        {  # One replica down is fine; both down (one failing, one gone) is not.
            "interval": "1m",
            "input_series": [
                series("up", "1x10 0x30", **up, instance="10.0.0.1:8080"),
                series("up", "1x20 stale", **up, instance="10.0.0.2:8080"),
                series("up", "0x40", job="something-else", namespace="mr-system", instance="x"),
            ],
            "alert_rule_test": [
                alert("ModelRolloutOperatorDown", 20),
                alert("ModelRolloutOperatorDown", 24),
                alert(
                    "ModelRolloutOperatorDown",
                    27,
                    "No modelrollout operator replica is up in mr-system",
                    severity="critical",
                ),
            ],
        },
        {  # Never scraped at all (say, the ServiceMonitor matched nothing).
            "interval": "1m",
            "input_series": [series("up", "1x20", job="something-else", namespace="x")],
            "alert_rule_test": [
                alert("ModelRolloutOperatorDown", 4),
                alert(
                    "ModelRolloutOperatorDown",
                    6,
                    "No modelrollout operator replica is up in mr-system",
                    severity="critical",
                ),
            ],
        },
        {  # fraud fails every reconcile from minute 0 on, at the operator's
            # back-off; churn (its counter at 0 from first sight) failed once.
            "interval": "1m",
            "input_series": [
                series("modelrollout_reconcile_errors_total", failing_reconciles(60), **MD),
                series("modelrollout_reconcile_errors_total", "0x10 1x50", **OTHER),
            ],
            "alert_rule_test": [
                alert("ModelRolloutReconcileErrors", 14),
                *(
                    alert(
                        "ModelRolloutReconcileErrors",
                        minute,
                        "Reconciles of ml/fraud keep failing",
                        **stuck,
                        severity="warning",
                    )
                    for minute in (17, 40, 60)
                ),
            ],
        },
    ]


def dashboard_tests(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """The dashboard counts a rollback in the range even when it is the first
    of its labels (the series appears at 1, which increase() does not see)."""
    queries = {
        panel["title"]: dashboard_query(panel["targets"][0]["expr"])
        for panel in dashboard["panels"]
    }
    counter = "modelrollout_rollouts_rolled_back_total"
    fraud = {**MD, "reason": "RolledBack", "metric": "error-rate"}
    churn = {**OTHER, "reason": "Aborted", "metric": ""}
    return [
        {  # fraud: first rollback at minute 100, second at 110; churn: one at
            # minute 20 (outside the last hour) and one at minute 120.
            "interval": "1m",
            "input_series": [
                series(counter, "_x100 1x10 2x20", **fraud),
                series(counter, "0x20 1x100 2x10", **churn),
            ],
            "promql_expr_test": [
                {
                    "expr": f"round({queries['Rollbacks ($__range)']})",
                    "eval_time": "130m",
                    "exp_samples": [{"labels": "{}", "value": 3}],
                },
                {
                    "expr": f"round({queries['Rollbacks by reason (per hour)']})",
                    "eval_time": "130m",
                    "exp_samples": [
                        {
                            "labels": '{namespace="ml", name="fraud", reason="RolledBack", '
                            'metric="error-rate"}',
                            "value": 2,
                        },
                        {
                            "labels": '{namespace="ml", name="churn", reason="Aborted"}',
                            "value": 1,
                        },
                    ],
                },
            ],
        }
    ]


@pytest.mark.integration
def test_the_alerts_fire_when_they_should_and_not_otherwise(tmp_path: Path) -> None:
    """`promtool test rules` on the rendered PrometheusRule and the dashboard's
    counting queries: a first rollback fires, a stuck rollout, a drifting
    model, an operator with no replica up and an object that keeps failing do;
    an old rollback, a finished rollout, a short drift, one replica down and a
    single error do not."""
    documents = render(
        "--set", "metrics.prometheusRule.enabled=true", "--set", "dashboard.enabled=true"
    )
    (rule,) = [d for d in documents if d["kind"] == "PrometheusRule"]
    for group in rule["spec"]["groups"]:
        for alerting in group["rules"]:  # the summary is what a receiver shows
            alerting["annotations"] = {"summary": alerting["annotations"]["summary"]}
    (config_map,) = [d for d in documents if d["kind"] == "ConfigMap"]
    dashboard = json.loads(config_map["data"]["modelrollout.json"])
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    tests = tmp_path / "tests.yaml"
    tests.write_text(
        yaml.safe_dump(
            {
                "rule_files": ["rules.yaml"],
                "evaluation_interval": "1m",
                "tests": [*alert_tests(), *dashboard_tests(dashboard)],
            }
        )
    )
    result = subprocess.run(
        ["promtool", "test", "rules", str(tests)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    alerts = {a["alert"] for g in rule["spec"]["groups"] for a in g["rules"]}
    tested = {t["alertname"] for group in alert_tests() for t in group.get("alert_rule_test", [])}
    assert alerts == tested, f"alerts without a promtool test: {alerts - tested}"


E2E_KIND_NAMESPACE = "modelrollout-e2e"


@pytest.mark.integration
def test_the_examples_and_kind_e2e_manifests_pass_the_check_the_script_runs(
    crds: ClusterUnderTest,
) -> None:
    """make e2e-kind cannot run here (no Docker); the check it runs after
    installing the chart (scripts/e2e-kind/check-manifests.sh: a server-side
    dry-run of every example and of its own manifests, each in the namespace
    it names) runs unchanged against the local cluster, and the ModelDeployments
    also go through the models."""
    for path in sorted((REPO_ROOT / "scripts" / "e2e-kind").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document["kind"] == n.KIND:
                parse_spec(document["spec"])
    crds.kubectl("create", "namespace", E2E_KIND_NAMESPACE)
    try:
        kubectl_dir = ensure_tools().kubectl.parent
        result = subprocess.run(
            ["bash", str(REPO_ROOT / "scripts" / "e2e-kind" / "check-manifests.sh"),
             "--kubeconfig", str(crds.kubeconfig)],
            capture_output=True, text=True, check=False, timeout=300,
            env={**os.environ, "PATH": f"{kubectl_dir}{os.pathsep}{os.environ['PATH']}"},
        )  # fmt: skip
    finally:
        crds.kubectl("delete", "namespace", E2E_KIND_NAMESPACE, "--wait=false")
    assert result.returncode == 0, result.stdout + result.stderr


ERROR_RATE_MANIFESTS = sorted(
    [*(REPO_ROOT / "examples").glob("*.yaml"), *(REPO_ROOT / "scripts" / "e2e-kind").glob("*.yaml")]
)


def error_rate_checks() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Every analysis check of the examples and kind manifests that measures the
    share of 5xx responses."""
    checks = []
    for path in ERROR_RATE_MANIFESTS:
        for document in yaml.safe_load_all(path.read_text()):
            if not document or document["kind"] != n.KIND:
                continue
            for metric in document["spec"].get("analysis", {}).get("metrics", []):
                if 'code=~"5.."' in metric.get("query", ""):
                    checks.append((path.name, document, metric))
    return checks


@pytest.mark.integration
@pytest.mark.parametrize(
    ("manifest", "body", "metric"),
    error_rate_checks(),
    ids=[f"{path}:{metric['name']}" for path, _, metric in error_rate_checks()],
)
def test_error_rate_queries_read_zero_for_a_version_that_never_failed(
    manifest: str, body: dict[str, Any], metric: dict[str, Any], tmp_path: Path
) -> None:
    """A version that never answered 5xx has no 5xx series: the query must read
    0 (`or vector(0)`), not no data, or the rollout pauses instead of promoting;
    half its requests failing reads 0.5. Evaluated by promtool on the query as
    the operator renders it."""
    namespace = body["metadata"].get("namespace", "default")

    def rendered(version: str) -> str:
        context = QueryContext(namespace, body["metadata"]["name"], "r2", version, "r1", "1", 30)
        return templating.render(metric["query"], templating.variables(context, "canary"))

    def requests(version: str, code: str, per_sample: int) -> dict[str, str]:
        labels = {
            "model_name": "m",
            "model_version": version,
            "namespace": namespace,
            "endpoint": "infer",
            "code": code,
        }
        return series("modelserver_requests_total", f"0+{per_sample}x400", **labels)

    tests = tmp_path / "tests.yaml"
    tests.write_text(
        yaml.safe_dump(
            {
                "rule_files": [],
                "tests": [
                    {
                        "interval": "5s",  # as the kind Prometheus scrapes
                        "input_series": [
                            requests("2", "200", 50),
                            requests("3", "200", 25),
                            requests("3", "500", 25),
                        ],
                        "promql_expr_test": [
                            {
                                "expr": rendered("2"),
                                "eval_time": "20m",
                                "exp_samples": [{"labels": "{}", "value": 0}],
                            },
                            {
                                "expr": rendered("3"),
                                "eval_time": "20m",
                                "exp_samples": [{"labels": "{}", "value": 0.5}],
                            },
                        ],
                    }
                ],
            }
        )
    )
    result = subprocess.run(
        ["promtool", "test", "rules", str(tests)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, f"{manifest} {metric['name']}:\n{result.stdout}{result.stderr}"
