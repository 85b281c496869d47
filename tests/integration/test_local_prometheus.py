"""The Prometheus helper starts Debian's real Prometheus, which scrapes what it
is told to and answers PromQL over the scraped samples."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from modelrollout.devenv.ports import free_port
from modelrollout.devenv.prometheus import LocalPrometheus, start_prometheus
from support.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[LocalPrometheus]:
    instance = start_prometheus(tmp_path / "prometheus", scrape_interval="1s")
    try:
        yield instance
    finally:
        instance.stop()


def test_prometheus_scrapes_a_target_and_answers_queries(prometheus: LocalPrometheus) -> None:
    registry = CollectorRegistry()
    served = Counter("demo_requests", "Requests the test target served.", registry=registry)
    served.inc(7)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        prometheus.configure(
            [{"job_name": "target", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}],
            scrape_interval="1s",
        )
        samples = wait_for(
            lambda: prometheus.query('demo_requests_total{job="target"}'),
            timeout=30,
            what="the target's counter to be scraped",
        )
        assert float(samples[0]["value"][1]) == 7.0
        assert samples[0]["metric"]["instance"] == f"127.0.0.1:{port}"
        assert prometheus.query("absent_metric_that_nobody_exports") == []
    finally:
        server.shutdown()
        thread.join()


def test_prometheus_listens_on_loopback_only(prometheus: LocalPrometheus) -> None:
    assert prometheus.url.startswith("http://127.0.0.1:")
    assert prometheus.is_ready()
    prometheus.stop()
    assert prometheus.process.poll() is not None
    assert not prometheus.is_ready()
