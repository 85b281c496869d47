"""A metrics target the tests control: a prometheus_client exporter in this
process on a free loopback port, and a real Prometheus scraping it every second.

Tests set gauge values and watch the operator judge them through real PromQL;
nothing about Prometheus is simulated.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from modelrollout.devenv.ports import free_port
from modelrollout.devenv.prometheus import LocalPrometheus, start_prometheus
from support.waiting import wait_for

QUALITY = "modelrollout_test_quality"
SCRAPE_INTERVAL = "1s"


@dataclass
class MetricsLab:
    """`quality` is a gauge labelled model_version; `prometheus` scrapes it."""

    quality: Gauge
    target: str
    workdir: Path
    prometheus: LocalPrometheus

    @property
    def url(self) -> str:
        return self.prometheus.url

    def scrape_configs(self) -> list[dict[str, object]]:
        return [{"job_name": "lab", "static_configs": [{"targets": [self.target]}]}]

    def set_quality(self, version: str, value: float) -> None:
        self.quality.labels(model_version=version).set(value)

    def wait_scraped(self, version: str, value: float) -> None:
        """Until Prometheus holds `value` for `version` (NaN compares by text)."""
        query = f'{QUALITY}{{model_version="{version}"}}'
        wait_for(
            lambda: any(s["value"][1] == _text(value) for s in self.prometheus.query(query)),
            timeout=30,
            what=f"Prometheus to scrape {query} = {value}",
        )

    def stop_prometheus(self) -> None:
        self.prometheus.stop()

    def restart_prometheus(self) -> None:
        """The same address and storage, as after a Prometheus pod restart."""
        port = urlsplit(self.prometheus.url).port
        self.prometheus = start_prometheus(
            self.workdir, self.scrape_configs(), scrape_interval=SCRAPE_INTERVAL, port=port
        )


def _text(value: float) -> str:
    return "NaN" if math.isnan(value) else f"{value:g}"


@contextmanager
def metrics_lab(workdir: Path) -> Iterator[MetricsLab]:
    registry = CollectorRegistry()
    quality = Gauge(QUALITY, "A model quality the test sets.", ["model_version"], registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    target = f"127.0.0.1:{port}"
    prometheus = start_prometheus(
        workdir,
        [{"job_name": "lab", "static_configs": [{"targets": [target]}]}],
        scrape_interval=SCRAPE_INTERVAL,
    )
    lab = MetricsLab(quality=quality, target=target, workdir=workdir, prometheus=prometheus)
    try:
        yield lab
    finally:
        lab.prometheus.stop()
        server.shutdown()
        thread.join()
