"""The Prometheus provider against a real Prometheus scraping an exporter whose
values the test sets: a value, no data, NaN, several series, bad PromQL and a
stopped Prometheus each come out as what they are. Also the webhook check and
the notification POST against a real HTTP endpoint."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from modelrollout.api import Analysis
from modelrollout.devenv.ports import free_port
from modelrollout.metrics import PrometheusMetricProvider, measure
from modelrollout.metrics.webhook import check_webhook
from modelrollout.notifications import NotificationError, post_notification
from modelrollout.rollout.measurement import MeasurementRequest
from modelrollout.rollout.query_variables import QueryContext, variables
from support.exporter import QUALITY, MetricsLab, metrics_lab
from support.hooks import running_hook

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[MetricsLab]:
    with metrics_lab(tmp_path / "prometheus") as running:
        yield running


@pytest.fixture
def provider(lab: MetricsLab) -> Iterator[PrometheusMetricProvider]:
    client = PrometheusMetricProvider(lab.url, timeout_seconds=5)
    try:
        yield client
    finally:
        client.close()


def test_a_value(lab: MetricsLab, provider: PrometheusMetricProvider) -> None:
    lab.set_quality("7", 0.42)
    lab.wait_scraped("7", 0.42)
    measured = provider.measure(f'max({QUALITY}{{model_version="7"}})')
    assert (measured.kind, measured.value) == ("value", 0.42)


def test_no_series_is_no_data(lab: MetricsLab, provider: PrometheusMetricProvider) -> None:
    lab.set_quality("7", 0.42)
    lab.wait_scraped("7", 0.42)
    measured = provider.measure(f'max({QUALITY}{{model_version="8"}})')
    assert measured.kind == "nodata" and "empty" in measured.message


def test_nan_is_no_data(lab: MetricsLab, provider: PrometheusMetricProvider) -> None:
    lab.set_quality("7", math.nan)
    lab.wait_scraped("7", math.nan)
    measured = provider.measure(f'{QUALITY}{{model_version="7"}}')
    assert measured.kind == "nodata" and "NaN" in measured.message
    # Division by zero in PromQL itself is +Inf or NaN: also no data.
    assert provider.measure("1/0").kind == "nodata"


def test_several_series_are_an_error_naming_them(
    lab: MetricsLab, provider: PrometheusMetricProvider
) -> None:
    lab.set_quality("7", 0.4)
    lab.set_quality("8", 0.5)
    lab.wait_scraped("8", 0.5)
    measured = provider.measure(QUALITY)
    assert measured.kind == "error"
    assert "2 series" in measured.message and '"model_version": "7"' in measured.message


def test_bad_promql_is_an_error_with_prometheus_reason(provider: PrometheusMetricProvider) -> None:
    measured = provider.measure("sum(")
    assert measured.kind == "error"
    assert "400" in measured.message and "parse error" in measured.message


def test_a_stopped_prometheus_is_an_error(
    lab: MetricsLab, provider: PrometheusMetricProvider
) -> None:
    lab.stop_prometheus()
    measured = provider.measure("vector(1)")
    assert measured.kind == "error" and "cannot reach Prometheus" in measured.message


def test_nothing_listening_is_an_error_not_a_hang() -> None:
    client = PrometheusMetricProvider(f"http://127.0.0.1:{free_port()}", timeout_seconds=2)
    try:
        assert client.measure("vector(1)").kind == "error"
    finally:
        client.close()


def test_compare_to_stable_runs_the_templated_query_for_both_revisions(
    lab: MetricsLab, provider: PrometheusMetricProvider
) -> None:
    lab.set_quality("1", 0.91)
    lab.set_quality("2", 0.85)
    lab.wait_scraped("2", 0.85)
    analysis = Analysis.model_validate(
        {
            "prometheus": {"address": lab.url},
            "metrics": [
                {
                    "name": "accuracy",
                    "query": f'max({QUALITY}{{model_version="{{{{ version }}}}"}})',
                    "compareTo": "stable",
                    "maxDecrease": 0.02,
                },
                {
                    "name": "canary-quality",
                    "query": f'max({QUALITY}{{model_version="{{{{ canaryVersion }}}}"}})',
                    "min": 0.8,
                },
            ],
        }
    )
    context = QueryContext("ml", "fraud", "new", "2", "old", "1", 2)
    request = MeasurementRequest(
        purpose="rollout",
        revision="new",
        metrics=("accuracy", "canary-quality"),
        webhook=False,
        variables=variables(context, "canary"),
        stable_variables=variables(context, "stable"),
    )
    verdicts = measure(analysis, request, provider, NOW)
    accuracy = verdicts["accuracy"]
    assert (accuracy.verdict, accuracy.value) == ("fail", 0.85)
    assert accuracy.threshold == "min 0.89 (stable 0.91 - maxDecrease 0.02)"
    assert accuracy.revision == "new"
    assert (verdicts["canary-quality"].verdict, verdicts["canary-quality"].value) == ("pass", 0.85)


def test_the_webhook_check_is_judged_by_status_code() -> None:
    analysis = Analysis.model_validate(
        {"webhook": {"url": "http://placeholder/", "timeoutSeconds": 2}}
    )
    assert analysis.webhook is not None
    with running_hook() as hook:
        check = analysis.webhook.model_copy(update={"url": hook.url})
        passed = check_webhook(check, {"version": "2"}, measured_at=NOW, revision="new")
        hook.status = 503
        failed = check_webhook(check, {"version": "2"}, measured_at=NOW, revision="new")
        assert hook.bodies() == [{"version": "2"}, {"version": "2"}]
    assert (passed.verdict, passed.value) == ("pass", 200)
    assert (failed.verdict, failed.value) == ("fail", 503)
    unreachable = check.model_copy(update={"url": f"http://127.0.0.1:{free_port()}/"})
    errored = check_webhook(unreachable, {}, measured_at=NOW, revision="new")
    assert errored.verdict == "error"


def test_a_failed_notification_says_why_without_the_url() -> None:
    with running_hook(path="/services/T000/B000/secret-token") as hook:
        post_notification(hook.url, {"text": "hello"}, timeout_seconds=5)
        assert hook.bodies() == [{"text": "hello"}]
        hook.status = 500
        with pytest.raises(NotificationError) as raised:
            post_notification(hook.url, {"text": "again"}, timeout_seconds=5)
    assert "500" in str(raised.value) and "secret-token" not in str(raised.value)
    with pytest.raises(NotificationError) as unreachable:
        post_notification(hook.url, {"text": "gone"}, timeout_seconds=2)
    assert "secret-token" not in str(unreachable.value)
