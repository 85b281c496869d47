"""The Helm chart rendered, not installed: the CRDs it ships, `helm lint
--strict`, the values schema, and every rendering through the API server's own
validation (server-side dry-run, the ServiceMonitor and PrometheusRule against
the Prometheus Operator's CRDs) with its PromQL, and the dashboard's, checked by
promtool."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelrollout.devenv.tools import REPO_ROOT, ensure_tools
from support.chart import CHART, dashboard_query, render
from support.kube import ClusterUnderTest


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


def dashboard_as_rules(dashboard: dict[str, Any]) -> dict[str, Any]:
    """Each panel query as a recording rule, so promtool parses its PromQL."""
    rules = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = dashboard_query(target["expr"])
            rules.append({"record": f"dashboard:panel{panel['id']}{target['refId']}", "expr": expr})
    return {"name": "dashboard", "rules": rules}
