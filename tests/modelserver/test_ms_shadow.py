"""Shadow traffic between real servers on loopback: the champion mirrors a sample of
its requests to the challenger and compares the answers, and whatever the
challenger does, clients get the champion's answers, all of them, at once.

Servers are `modelrollout serve` processes (ms_helpers.running_server). The shadow
configuration is a file updated the way the kubelet updates a projected ConfigMap
(ms_helpers.ProjectedFile). The expected sample is computed with the hash the
server uses (records.sampled) and the expected agreement from the two artifacts'
own predictions, so counts and ratios are asserted exactly. Evaluations run every
0.2 s and the agreement window reports from 20 rows.
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
import pytest
from ms_helpers import (
    ProjectedFile,
    Server,
    http,
    label,
    metric_samples,
    running_server,
    v2_body,
)
from prometheus_client import CollectorRegistry

from modelrollout.devenv.ports import free_port
from modelserver.datasets import load_dataset
from modelserver.records import RecordStore, sampled
from modelserver.service import load_service
from modelserver.settings import Settings
from modelserver.tensors import HEADER_LENGTH, encode_raw
from support.waiting import wait_for

pytestmark = pytest.mark.integration

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


@pytest.fixture(scope="module")
def agreeing(
    models: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    """Champion and challenger serve the same artifact: they agree on every row."""
    wine = models["wine-improved"]
    with serving_pair(wine, wine, tmp_path_factory.mktemp("agreeing")) as pair:
        yield pair


def test_an_agreeing_challenger_is_compared_on_exactly_the_sampled_requests(
    agreeing: Pair, models: dict[str, dict[str, Any]]
) -> None:
    agreeing.config.write(plan(50))
    mirroring(agreeing.champion, 50.0)
    ids = [f"agree-{i}" for i in range(200)]
    expected = sum(sampled(i, 0.5) for i in ids)
    print(f"50% of 200 requests: {expected} in the id hash's sample")
    before = settled(agreeing.champion).get("compared", 0.0)
    assert send(agreeing.champion, ids) == predicted(models["wine-improved"], ids)
    seen = settled(agreeing.champion)
    assert seen["compared"] == before + expected
    assert seen["failed"] == seen["timeout"] == seen["dropped"] == 0.0
    copies = before + expected
    version = {"challenger_version": "2"}
    assert shadow(agreeing.champion, "agreement_total", agreed="true", **version) == copies
    assert shadow(agreeing.champion, "agreement_total", agreed="false", **version) == 0.0
    figures = window(agreeing.champion, int(copies))
    assert figures == {"agreement_ratio": 1.0, "prediction_psi": 0.0, "mean_abs_difference": None}
    # The challenger served every copy, counted apart from client requests, and its
    # drift window saw the live inputs.
    other = agreeing.challenger
    assert shadow(other, "served_total", endpoint="infer", code="200") == copies
    assert label(metric_samples(other.metrics(), "modelserver_requests_total")) is None
    wait_for(
        lambda: (
            label(metric_samples(other.metrics(), "modelserver_drift_window_samples")) == copies
        ),
        timeout=10,
        what="the challenger's drift window to hold the copies' rows",
    )


def test_every_rest_form_of_a_request_is_mirrored_and_compared(agreeing: Pair) -> None:
    agreeing.config.write(plan(100))
    mirroring(agreeing.champion, 100.0)
    before = settled(agreeing.champion)["compared"]
    url = agreeing.champion.url
    row = {n: float(v) for n, v in zip(WINE.feature_names, WINE.X[3], strict=True)}
    # The versioned route: the copy goes to the challenger's unversioned one.
    status, _, _ = http("POST", f"{url}/v2/models/wine/versions/1/infer", v2_body(row, id="f-1"))
    assert status == 200
    status, body, _ = http(
        "POST", f"{url}/v1/models/wine:predict", json.dumps({"instances": [row, row]})
    )
    assert status == 200 and len(body["predictions"]) == 2
    # The binary tensor extension, in and out (tritonclient's default).
    parts = [encode_raw(np.array([value]), "FP64") for value in row.values()]
    header = json.dumps(
        {
            "id": "f-3",
            "inputs": [
                {"name": n, "datatype": "FP64", "shape": [1],
                 "parameters": {"binary_data_size": len(p)}}
                for n, p in zip(row, parts, strict=True)
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()  # fmt: skip
    status, _, headers = http(
        "POST",
        f"{url}/v2/models/wine/infer",
        header + b"".join(parts),
        {HEADER_LENGTH: str(len(header)), "Content-Type": "application/octet-stream"},
    )
    assert status == 200 and HEADER_LENGTH in headers
    # Only probabilities asked for: nothing to compare, so no copy.
    status, _, _ = http(
        "POST", f"{url}/v2/models/wine/infer", v2_body(row, outputs=[{"name": "predict_proba"}])
    )
    assert status == 200
    # A request already marked as a copy is served, never mirrored on.
    status, _, _ = http(
        "POST", f"{url}/v2/models/wine/infer", v2_body(row), {"X-Modelrollout-Shadow": "1"}
    )
    assert status == 200
    seen = settled(agreeing.champion)
    assert seen["compared"] == before + 3
    assert seen["failed"] == seen["timeout"] == seen["dropped"] == 0.0
    assert shadow(agreeing.challenger, "served_total", endpoint="predict", code="200") == 1.0


def test_configuration_changes_are_picked_up_without_a_restart(agreeing: Pair) -> None:
    champion, config = agreeing.champion, agreeing.config

    def copies_for(ids: list[str]) -> float:
        before = sum(settled(champion).values())
        send(champion, ids)
        return sum(settled(champion).values()) - before

    config.write(plan(0))
    print("percent 0 read after", round(mirroring(champion, 0.0), 2), "s")
    assert copies_for([f"off-{i}" for i in range(30)]) == 0
    config.write(plan(50))
    print("percent 50 read after", round(mirroring(champion, 50.0), 2), "s")
    ids = [f"half-{i}" for i in range(60)]
    assert copies_for(ids) == sum(sampled(i, 0.5) for i in ids)
    config.write(plan(0))
    mirroring(champion, 0.0)
    assert copies_for([f"off-again-{i}" for i in range(30)]) == 0

    def logged(text: str) -> int:
        return sum(text in line["msg"] for line in champion.log_lines())

    config.write(plan(100))
    mirroring(champion, 100.0)
    config.write(plan(100, champion="rev-someone-else"))
    mirroring(champion, 0.0)
    assert copies_for([f"not-me-{i}" for i in range(20)]) == 0
    assert logged("is not the champion 'rev-someone-else'") == 1
    config.write(plan(100))
    mirroring(champion, 100.0)
    config.write('{"percent": 100, "champion": ')
    mirroring(champion, 0.0)
    assert copies_for([f"broken-{i}" for i in range(20)]) == 0
    config.write(plan(100))
    mirroring(champion, 100.0)
    # The broken file was stat'ed every second while it lasted, and logged once.
    assert logged("malformed shadow configuration") == 1
    assert copies_for([f"back-{i}" for i in range(10)]) == 10


def test_a_challenger_that_disagrees_on_a_slice_pulls_agreement_under_the_gate(
    models: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    # The degraded variant learned a labelling bug: it calls part of the largest
    # class another class, and agrees with the champion elsewhere.
    champion, challenger = models["wine-improved"], models["wine-degraded"]
    ids = [f"slice-{i}" for i in range(100)]
    expected = [n for n, i in enumerate(ids) if sampled(i, 0.6)]
    ours = predicted(champion, ids, count=3)
    theirs = predicted(challenger, ids, count=3)
    own = [label for n in expected for label in ours[n]]
    other = [label for n in expected for label in theirs[n]]
    matches = sum(a == b for a, b in zip(own, other, strict=True))
    agreement = matches / len(own)
    print(f"expected agreement over {len(own)} rows: {agreement:.3f}")
    assert agreement < 0.9  # the gate in the README's example is 0.97
    with serving_pair(champion, challenger, tmp_path) as pair:
        pair.config.write(plan(60))
        mirroring(pair.champion, 60.0)
        assert send(pair.champion, ids, count=3) == ours  # clients get the champion's answers
        assert settled(pair.champion)["compared"] == len(expected)
        figures = window(pair.champion, len(own))
        version = {"challenger_version": "2"}
        agreed = shadow(pair.champion, "agreement_total", agreed="true", **version)
        disagreed = shadow(pair.champion, "agreement_total", agreed="false", **version)
    assert (agreed, disagreed) == (matches, len(own) - matches)
    assert figures["agreement_ratio"] == pytest.approx(agreement)
    classes = ["class_0", "class_1", "class_2"]
    assert figures["prediction_psi"] == pytest.approx(by_hand_psi(own, other, classes))


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


def test_copies_in_flight_are_bounded_and_clients_never_wait_for_them(
    models: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    wine = models["wine-improved"]
    ids = [f"held-{i}" for i in range(20)]
    with (
        HeldChallenger() as stub,
        champion_server(
            wine, tmp_path, stub.url,
            MODELSERVER_SHADOW_MAX_IN_FLIGHT="4", MODELSERVER_SHADOW_TIMEOUT_SECONDS="30",
        ) as (champion, config),
    ):  # fmt: skip
        config.write(plan(100))
        mirroring(champion, 100.0)
        # Every answer comes back while the challenger still holds the first copies.
        assert send(champion, ids) == predicted(wine, ids)
        assert not stub.release.is_set()
        wait_for(lambda: stub.held == 4, timeout=10, what="the challenger to hold 4 copies")
        assert outcomes(champion)["dropped"] == 16
        assert shadow(champion, "in_flight") == 4
        stub.release.set()
        seen = settled(champion)
        assert stub.most_held == 4
    # The held copies got an HTML page: not an answer, so failed.
    assert seen == {"compared": 0.0, "dropped": 16.0, "failed": 4.0, "timeout": 0.0}


def test_a_slow_challenger_times_out_and_is_logged_once(
    models: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    wine = models["wine-improved"]
    ids = [f"slow-{i}" for i in range(10)]
    with (
        HeldChallenger() as stub,
        champion_server(wine, tmp_path, stub.url, MODELSERVER_SHADOW_TIMEOUT_SECONDS="0.3") as (
            champion,
            config,
        ),
    ):
        config.write(plan(100))
        mirroring(champion, 100.0)
        assert send(champion, ids) == predicted(wine, ids)
        seen = settled(champion)
        failing = [line for line in champion.log_lines() if "shadow copies failing" in line["msg"]]
    assert seen == {"compared": 0.0, "dropped": 0.0, "failed": 0.0, "timeout": 10.0}
    assert [line["msg"] for line in failing] == [
        "shadow copies failing: no answer within 0.3 s; counted, clients unaffected"
    ]


BAD_REPLIES = {
    "error-status": (503, b'{"error": "overloaded"}'),
    "wrong-rows": (200, b'{"outputs": [{"name": "predict", "data": ["class_0", "class_1"]}]}'),
    "down": (200, b""),  # never asked: nothing listens where the champion sends
}


@pytest.mark.parametrize("kind", sorted(BAD_REPLIES))
def test_a_challenger_that_is_down_or_answers_badly_costs_clients_nothing(
    models: dict[str, dict[str, Any]], tmp_path: Path, kind: str
) -> None:
    wine = models["wine-improved"]
    ids = [f"{kind}-{i}" for i in range(10)]
    with HeldChallenger(*BAD_REPLIES[kind]) as stub:
        stub.release.set()
        url = f"http://127.0.0.1:{free_port()}" if kind == "down" else stub.url
        with champion_server(wine, tmp_path, url) as (champion, config):
            config.write(plan(100))
            mirroring(champion, 100.0)
            assert send(champion, ids) == predicted(wine, ids)
            seen = settled(champion)
            # The version is known when something answered.
            version = "" if kind == "down" else "2"
            failed = shadow(
                champion, "requests_total", outcome="failed", challenger_version=version
            )
    assert seen["failed"] == failed == 10.0
    assert seen["compared"] == seen["timeout"] == seen["dropped"] == 0.0


def test_a_regressor_challenger_is_measured_by_its_mean_absolute_difference(
    tmp_path: Path,
) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from modelserver.packaging import package

    frame = load_diabetes(as_frame=True).frame
    features = frame.drop(columns="target")
    artifacts, predictions = [], []
    for alpha in (1.0, 300.0):
        pipeline = make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(features, frame.target)
        found = package(pipeline, frame, "target", tmp_path / f"ridge-{alpha:g}")
        artifacts.append({"uri": found.artifact.as_uri(), "sha256": found.sha256})
        predictions.append(pipeline.predict(features.iloc[:40]))
    with serving_pair(*artifacts, tmp_path, name="diabetes") as pair:
        pair.config.write(plan(100))
        mirroring(pair.champion, 100.0)
        for i in range(40):
            row = {n: float(v) for n, v in features.iloc[i].items()}
            url = f"{pair.champion.url}/v2/models/diabetes/infer"
            assert http("POST", url, v2_body(row))[0] == 200
        assert settled(pair.champion)["compared"] == 40
        figures = window(pair.champion, 40)
        count = shadow(pair.champion, "absolute_difference_count", challenger_version="2")
    differences = np.abs(predictions[0] - predictions[1])
    print(f"expected mean |difference| {differences.mean():.3f}")
    assert figures["mean_abs_difference"] == pytest.approx(differences.mean())
    assert figures["agreement_ratio"] is None
    assert figures["prediction_psi"] is not None
    assert count == 40


def live_accuracy(server: Server) -> float:
    found: float = wait_for(
        lambda: label(metric_samples(server.metrics(), "modelserver_feedback_accuracy")),
        timeout=30,
        what="the live accuracy of the labelled rows",
    )
    return found


def test_with_the_records_store_a_label_at_the_champion_scores_the_challenger_too(
    models: dict[str, dict[str, Any]], tmp_path: Path, records_dsn: str
) -> None:
    champion, challenger = models["wine-improved"], models["wine-degraded"]
    # Every row of the table once: the labelling bug shows on the largest class.
    ids = [f"labelled-{i}" for i in range(len(WINE.y))]
    truth = [str(WINE.y[i]) for i in range(len(ids))]
    ours, theirs = predicted(champion, ids), predicted(challenger, ids)
    expected = {
        "champion": sum(p == [t] for p, t in zip(ours, truth, strict=True)) / len(ids),
        "challenger": sum(p == [t] for p, t in zip(theirs, truth, strict=True)) / len(ids),
    }
    print(f"expected live accuracy on the same requests: {expected}")
    store = {
        "MODELSERVER_RECORDS_DSN": records_dsn,
        "MODELSERVER_RECORDS_FLUSH_SECONDS": "0.2",
        # The gauge appears once every labelled row has joined its prediction.
        "MODELSERVER_FEEDBACK_MIN_SAMPLES": str(len(ids)),
    }
    name = "shadow-records"
    with serving_pair(champion, challenger, tmp_path, name, **store) as pair:
        pair.config.write(plan(100))
        mirroring(pair.champion, 100.0)
        assert send(pair.champion, ids, name=name) == ours
        assert settled(pair.champion)["compared"] == len(ids)
        # Labels arrive later, at the champion: the only server clients know.
        for request_id, label_ in zip(ids, truth, strict=True):
            body = json.dumps({"id": request_id, "labels": [label_]})
            url = f"{pair.champion.url}/v2/models/{name}/feedback"
            assert http("POST", url, body)[0] == 200
        accuracy = {
            "champion": live_accuracy(pair.champion),
            "challenger": live_accuracy(pair.challenger),
        }
    assert accuracy == pytest.approx(expected)
    assert accuracy["challenger"] < accuracy["champion"] - 0.2
    # The requests are the champion's: its answers, not the copies', are what feedback joins.
    recorded = RecordStore(records_dsn)
    assert [list(recorded.predictions(i) or ()) for i in ids] == ours
    recorded.close()


def test_without_a_challenger_url_nothing_is_mirrored(
    models: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    config = ProjectedFile(tmp_path / "shadow", "shadow.json")
    config.write(plan(100))  # this server is named champion, at 100%
    with running_server(
        models["wine-improved"],
        tmp_path,
        MODELROLLOUT_REVISION=CHAMPION,
        MODELSERVER_SHADOW_CONFIG_FILE=str(config.path),
    ) as server:
        send(server, [f"alone-{i}" for i in range(10)])
        text = server.metrics()
        lines = server.log_lines()
    assert label(metric_samples(text, "modelserver_shadow_mirror_percent")) == 0.0
    assert metric_samples(text, "modelserver_shadow_requests_total") == {}
    assert not [line for line in lines if "mirror" in line["msg"]]
