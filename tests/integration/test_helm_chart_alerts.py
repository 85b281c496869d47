"""The chart's PrometheusRule alerts and the dashboard's counting queries, as
rendered, under `promtool test rules`: each alert fires when it should and not
otherwise, and a first rollback is counted."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelrollout.settings import OperatorSettings
from support.chart import dashboard_query, render, series

# promtool's unit tests of the alerts and of the dashboard's counts. Series are
# sampled every minute from time 0 (Unix time 0, which time() returns); `_` is
# no sample, `stale` the end of a series. `render()` names the release `r` in
# `mr-system`, so the metrics Service (the scrape job) is r-modelrollout-metrics.
JOB = "r-modelrollout-metrics"
MD = {"namespace": "ml", "name": "fraud", "job": JOB, "instance": "10.0.0.1:8080"}
OTHER = {**MD, "name": "churn"}


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
