"""The examples and the kind e2e manifests (scripts/e2e-kind): the check `make
e2e-kind` runs after installing the chart, against the local cluster, and their
error-rate queries as the operator renders them, under promtool."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelrollout.api import names as n
from modelrollout.api import parse_spec
from modelrollout.devenv.tools import REPO_ROOT, ensure_tools
from modelrollout.metrics import templating
from modelrollout.rollout.query_variables import QueryContext, variables
from support.chart import series
from support.kube import ClusterUnderTest

E2E_KIND_NAMESPACE = "modelrollout-e2e"


@pytest.mark.integration
def test_the_examples_and_kind_e2e_manifests_pass_the_check_the_script_runs(
    crds: ClusterUnderTest,
) -> None:
    """make e2e-kind cannot run here (no Docker); the check it runs after
    installing the chart (scripts/e2e-kind/check-manifests.sh: a server-side
    dry-run of every example and of its own manifests, each in the namespace
    it names, the Gateway, GatewayClass and HTTPRoute of the gateway split among
    them) runs unchanged against the local cluster, and the ModelDeployments also
    go through the models."""
    for path in sorted((REPO_ROOT / "scripts" / "e2e-kind").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document["kind"] == n.KIND:
                parse_spec(document["spec"])
    crds.install_gateway_api()  # as Envoy Gateway's chart does before the check in kind
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
        return templating.render(metric["query"], variables(context, "canary"))

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
