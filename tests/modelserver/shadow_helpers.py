"""Helpers for the shadow-traffic tests: a champion and its challenger as real servers
on loopback, the rows and ids they are sent, what the champion's metrics say, and a
stub challenger that holds copies for as long as a test wants.

The shadow configuration is a file updated the way the kubelet updates a projected
ConfigMap (ms_helpers.ProjectedFile). Evaluations run every 0.2 s and the agreement
window reports from 20 rows, so the gauges appear within a test's requests.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
from ms_helpers import ProjectedFile, Server, http, label, metric_samples, running_server
from prometheus_client import CollectorRegistry

from modelrollout.devenv.ports import free_port
from modelserver.datasets import load_dataset
from modelserver.service import load_service
from modelserver.settings import Settings
from support.waiting import wait_for

CHAMPION, CHALLENGER = "rev-champion", "rev-challenger"
FAST = {"MODELSERVER_DRIFT_INTERVAL_SECONDS": "0.2", "MODELSERVER_SHADOW_MIN_SAMPLES": "20"}
WINE = load_dataset("wine")
# A configuration change is read within a second (shadow_config.CONFIG_STAT_SECONDS);
# this leaves room for a busy machine and the scrape.
PICKUP_SECONDS = 5


def plan(percent: float, champion: str = CHAMPION, challenger: str = CHALLENGER) -> str:
    return json.dumps({"percent": percent, "champion": champion, "challenger": challenger})


@dataclass
class Pair:
    champion: Server
    challenger: Server
    config: ProjectedFile


@contextmanager
def champion_server(
    artifact: dict[str, Any], log_dir: Path, url: str, name: str = "wine", **env: str
) -> Iterator[tuple[Server, ProjectedFile]]:
    config = ProjectedFile(log_dir / f"shadow-{free_port()}", "shadow.json")
    with running_server(
        artifact,
        log_dir,
        name,
        MODELROLLOUT_REVISION=CHAMPION,
        MODELSERVER_SHADOW_URL=url,
        MODELSERVER_SHADOW_CONFIG_FILE=str(config.path),
        **{**FAST, **env},
    ) as server:
        yield server, config


@contextmanager
def serving_pair(
    champion: dict[str, Any],
    challenger: dict[str, Any],
    log_dir: Path,
    name: str = "wine",
    **env: str,
) -> Iterator[Pair]:
    """A challenger (version 2) and a champion (version 1) mirroring to it; `env` for both."""
    with (
        running_server(
            challenger,
            log_dir,
            name,
            MODEL_VERSION="2",
            MODELROLLOUT_REVISION=CHALLENGER,
            **{**FAST, **env},
        ) as other,
        champion_server(champion, log_dir, other.url, name, **env) as (server, config),
    ):
        yield Pair(server, other, config)


def rows(index: int, count: int = 1) -> np.ndarray:
    return np.asarray([WINE.X[(index * count + k) % len(WINE.y)] for k in range(count)], float)


def columns(matrix: np.ndarray) -> dict[str, list[float]]:
    return {n: [float(v) for v in matrix[:, i]] for i, n in enumerate(WINE.feature_names)}


def v2_rows(matrix: np.ndarray) -> str:
    inputs = [
        {"name": n, "datatype": "FP64", "shape": [len(values)], "data": values}
        for n, values in columns(matrix).items()
    ]
    return json.dumps({"inputs": inputs})


def send(server: Server, ids: list[str], count: int = 1, name: str = "wine") -> list[list[str]]:
    """One V2 request per id (`count` rows each); every answer must be 200."""
    answers = []
    for i, request_id in enumerate(ids):
        status, body, _ = http(
            "POST",
            f"{server.url}/v2/models/{name}/infer",
            v2_rows(rows(i, count)),
            {"X-Request-Id": request_id},
        )
        assert status == 200, body
        assert body["id"] == request_id
        answers.append(body["outputs"][0]["data"])
    return answers


def predicted(artifact: dict[str, Any], ids: list[str], count: int = 1) -> list[list[str]]:
    """What the artifact itself predicts for the rows `send` sends."""
    settings = Settings(
        model_uri=artifact["uri"],
        model_sha256=artifact["sha256"],
        skops_trusted=("sklearn.tree._tree.Tree",),
    )
    model = load_service(settings, CollectorRegistry()).model
    return [model.predict(rows(i, count)).tolist() for i in range(len(ids))]


def shadow(server: Server, name: str, **labels: str) -> float | None:
    return label(metric_samples(server.metrics(), f"modelserver_shadow_{name}"), **labels)


def outcomes(server: Server) -> dict[str, float]:
    samples = metric_samples(server.metrics(), "modelserver_shadow_requests_total")
    found: dict[str, float] = {}
    for key, value in samples.items():
        outcome = key.split('outcome="')[1].split('"')[0]
        found[outcome] = found.get(outcome, 0.0) + value
    return found


def settled(server: Server) -> dict[str, float]:
    """The copies' outcomes once none awaits an answer. A copy is made before its
    request's answer leaves the champion, so every request sent so far is in them."""
    wait_for(
        lambda: shadow(server, "in_flight") == 0.0,
        timeout=30,
        what="the shadow copies in flight to be answered or to time out",
        interval=0.1,
    )
    return outcomes(server)


def mirroring(server: Server, percent: float) -> float:
    """Seconds until the champion mirrors `percent`% (its own gauge says so)."""
    start = time.monotonic()
    wait_for(
        lambda: shadow(server, "mirror_percent") == percent,
        timeout=PICKUP_SECONDS,
        what=f"the champion to mirror {percent}%",
        interval=0.05,
    )
    return time.monotonic() - start


def window(server: Server, rows_expected: int) -> dict[str, float | None]:
    wait_for(
        lambda: shadow(server, "window_rows") == rows_expected,
        timeout=30,
        what=f"an agreement window of {rows_expected} rows",
        interval=0.1,
    )
    return {
        name: shadow(server, name)
        for name in ("agreement_ratio", "prediction_psi", "mean_abs_difference")
    }


def by_hand_psi(first: list[str], second: list[str], bins: list[str]) -> float:
    total = 0.0
    for b in bins:
        p = max(first.count(b) / len(first), 1e-4)
        q = max(second.count(b) / len(second), 1e-4)
        total += (q - p) * float(np.log(q / p))
    return total


class HeldChallenger:
    """A loopback challenger that holds every copy until released, then answers `reply`
    (status, body) as version 2: for a challenger that is slow, fails or talks nonsense."""

    def __init__(self, status: int = 200, body: bytes = b"<html>no</html>") -> None:
        self.held = 0
        self.most_held = 0
        self.release = threading.Event()
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                with stub._lock:
                    stub.held += 1
                    stub.most_held = max(stub.most_held, stub.held)
                stub.release.wait(timeout=60)
                with stub._lock:
                    stub.held -= 1
                try:
                    self.send_response(status)
                    self.send_header("X-Model-Version", "2")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the champion gave up on this copy

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> HeldChallenger:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
