"""The server as a process on a loopback port: protocol, bad input over HTTP, metrics, start-up."""

from __future__ import annotations

import errno
import json
import os
import pickle
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import skops.io
from ms_helpers import CLI, Server, http, label, metric_samples, running_server, v2_body

from modelrollout.devenv.ports import free_port
from support.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(
    models: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    env = {"MODELSERVER_MAX_BODY_BYTES": "20000", "MODELROLLOUT_REVISION": "abc123"}
    with running_server(models["wine-improved"], tmp_path_factory.mktemp("http"), **env) as s:
        yield s


def test_open_inference_protocol_round_trip(server: Server, wine_row: dict[str, float]) -> None:
    assert http("GET", f"{server.url}/v2/health/live")[0] == 200
    status, meta, _ = http("GET", f"{server.url}/v2/models/wine")
    assert status == 200
    assert [i["name"] for i in meta["inputs"]][:2] == ["alcohol", "malic_acid"]
    assert http("GET", f"{server.url}/v2/models/wine/ready")[0] == 200
    status, body, headers = http(
        "POST", f"{server.url}/v2/models/wine/infer", v2_body(wine_row, id="abc")
    )
    assert status == 200
    assert body["id"] == "abc" == headers["X-Request-Id"]
    assert body["model_version"] == "1"
    assert body["outputs"][0]["data"] == ["class_0"]
    # Who answered, for a client behind a Service: the version, and where to send feedback.
    assert headers["X-Model-Version"] == "1"
    assert f"http://{headers['X-Served-By']}" == server.url
    status, body, _ = http(
        "POST", f"{server.url}/v1/models/wine:predict", json.dumps({"instances": [wine_row]})
    )
    assert (status, body) == (200, {"predictions": ["class_0"]})
    status, body, _ = http(
        "POST",
        f"{server.url}/v2/models/wine/feedback",
        json.dumps({"id": "abc", "labels": ["class_0"]}),
    )
    assert (status, body["correct"]) == (200, 1)


def bad_requests(row: dict[str, float]) -> list[tuple[str, str, str, int, str]]:
    infer = "/v2/models/wine/infer"
    no_hue = {k: v for k, v in row.items() if k != "hue"}
    return [
        ("malformed JSON", infer, '{"inputs": [', 400, "malformed JSON"),
        ("not UTF-8", infer, "\udcff", 400, "malformed JSON"),
        ("empty body", infer, "", 400, "empty request body"),
        (
            "wrong type",
            infer,
            v2_body({**row, "hue": "high"}).replace('"BYTES"', '"FP64"'),
            400,
            "'hue'",
        ),
        ("NaN literal", infer, v2_body(row).replace(str(row["hue"]), "NaN"), 400, "NaN"),
        ("missing feature", infer, v2_body(no_hue), 400, "missing feature(s) hue"),
        (
            "unknown feature",
            infer,
            v2_body({**row, "colour": 1.0}),
            400,
            "unknown feature(s) colour",
        ),
        (
            "oversized body",
            infer,
            json.dumps({"inputs": [], "pad": "x" * 30000}),
            413,
            "exceeds 20000 bytes",
        ),
        ("unknown model", "/v2/models/beer/infer", v2_body(row), 404, "unknown model 'beer'"),
        (
            "unknown version",
            "/v2/models/wine/versions/9/infer",
            v2_body(row),
            404,
            "no version '9'",
        ),
        ("v1 short row", "/v1/models/wine:predict", '{"instances": [[1, 2]]}', 400, "has 2 values"),
        (
            "feedback unknown id",
            "/v2/models/wine/feedback",
            '{"id": "nope", "labels": ["a"]}',
            404,
            "nope",
        ),
        ("no such route", "/v3/anything", "{}", 404, "Not Found"),
        ("id with a newline", infer, v2_body(row, id="a\nb"), 400, "'id' must be 1 to 200"),
        ("id too long", infer, v2_body(row, id="x" * 201), 400, "got 201 characters"),
        (
            "feedback id with a carriage return",
            "/v2/models/wine/feedback",
            json.dumps({"id": "a\rb", "labels": ["class_0"]}),
            400,
            "feedback 'id' must be",
        ),
    ]


def test_every_bad_request_gets_a_4xx_json_error_naming_it(
    server: Server, wine_row: dict[str, float]
) -> None:
    for case, path, body, code, says in bad_requests(wine_row):
        raw = body.encode("utf-8", "surrogateescape")
        status, answer, _ = http("POST", server.url + path, raw)
        assert status == code, case
        assert says in answer["error"], case
    status, answer, _ = http("GET", f"{server.url}/v2/models/wine/infer")
    assert status == 405
    assert "error" in answer


def test_an_id_with_a_newline_is_refused_and_the_connection_still_answers(
    server: Server, wine_row: dict[str, float]
) -> None:
    # The id used to be copied into the X-Request-Id header, where aiohttp
    # refused the newline and dropped the connection without any response.
    status, answer, headers = http(
        "POST", f"{server.url}/v2/models/wine/infer", v2_body(wine_row, id="evil\nSet-Cookie: x")
    )
    assert status == 400
    assert "control" in answer["error"]
    assert "\n" not in headers["X-Request-Id"]
    # The header is checked too: a space cannot round-trip through it.
    status, answer, _ = http(
        "POST",
        f"{server.url}/v2/models/wine/infer",
        v2_body(wine_row),
        headers={"X-Request-Id": "two words"},
    )
    assert status == 400
    assert "X-Request-Id" in answer["error"]
    status, _, headers = http(
        "POST", f"{server.url}/v2/models/wine/infer", v2_body(wine_row), {"X-Request-Id": "ok-1"}
    )
    assert (status, headers["X-Request-Id"]) == (200, "ok-1")


def test_refusals_are_logged_without_anything_the_client_chose(
    server: Server, wine_row: dict[str, float]
) -> None:
    mark = "zq7Xsecret"
    infer = f"{server.url}/v2/models/wine/infer"
    before = len(server.log_lines())
    # (url, body, headers, what the response says, the kind the log says)
    requests: list[tuple[str, str, dict[str, str], str, str]] = [
        (infer, v2_body({**wine_row, f"{mark}_f": 1.0}), {}, mark, "unknown_feature"),
        (infer, v2_body(wine_row, id=f"{mark}\n"), {}, "U+000A", "bad_id"),
        (infer, '{"inputs": [', {"X-Request-Id": f"{mark}-h"}, "malformed", "malformed_json"),
        (f"{server.url}/v2/models/{mark}/infer", v2_body(wine_row), {}, mark, "unknown_model"),
        (
            f"{server.url}/v1/models/wine:predict",
            json.dumps({"instances": [{mark: 1}]}),
            {},
            mark,
            "unknown_feature",
        ),
        (
            f"{server.url}/v2/models/wine/feedback",
            json.dumps({"id": f"{mark}-id", "labels": ["class_0"]}),
            {},
            mark,
            "unknown_request",
        ),
    ]
    for url, body, headers, says, _ in requests:
        status, answer, _ = http("POST", url, body, headers)
        assert 400 <= status < 500
        assert says in answer["error"]  # the client is told
    # Each refusal is logged (before its response is sent) as one JSON line.
    refused = [line for line in server.log_lines()[before:] if "refused" in line["msg"]]
    assert [line["kind"] for line in refused] == [r[-1] for r in requests]
    assert mark not in server.log.read_text()
    assert refused[0]["unknown_features"] == 1
    assert "request_id" not in refused[2]  # the client chose that one
    assert "request_id" in refused[3]  # the server did


def test_readiness_answers_503_while_the_model_loads_and_200_after(
    models: dict[str, dict[str, Any]], tmp_path: Path, wine_row: dict[str, float]
) -> None:
    model = models["wine-improved"]
    # The profile is read from a FIFO during loading, so loading cannot finish
    # until this test writes it: "still loading" is a state, not a race.
    fifo = tmp_path / "profile.fifo"
    os.mkfifo(fifo)
    env = {"MODELSERVER_PROFILE_URI": str(fifo)}
    with running_server(model, tmp_path, wait_ready=False, **env) as s:
        s.wait_until("/v2/health/live", "the port to open while the model loads")

        def writer() -> int | None:
            assert s.process.poll() is None, s.log.read_text()
            try:  # succeeds only once the server has opened the FIFO to read it
                return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
                return None

        fd = wait_for(writer, timeout=60, what="the server to start reading its profile")
        try:
            status, body, _ = http("GET", f"{s.url}/v2/health/ready")
            assert (status, body["ready"]) == (503, False)
            assert http("GET", f"{s.url}/v2/models/wine/ready")[0] == 503
            assert http("POST", f"{s.url}/v2/models/wine/infer", v2_body(wine_row))[0] == 503
            assert http("GET", f"{s.url}/v2/health/live")[0] == 200
            os.set_blocking(fd, True)
            os.write(fd, Path(model["profile"]).read_bytes())
        finally:
            os.close(fd)
        s.wait_until("/v2/health/ready", "readiness once the model is loaded")
        assert http("GET", f"{s.url}/v2/models/wine/ready")[0] == 200
        assert http("POST", f"{s.url}/v2/models/wine/infer", v2_body(wine_row))[0] == 200


def test_after_sigterm_it_reports_unready_but_keeps_answering_then_exits(
    models: dict[str, dict[str, Any]], tmp_path: Path, wine_row: dict[str, float]
) -> None:
    # A pod is still an endpoint for a moment after its SIGTERM: requests routed to
    # it then must be answered, while readiness already tells the kubelet to go.
    env = {"MODELSERVER_SHUTDOWN_DRAIN_SECONDS": "3"}
    with running_server(models["wine-improved"], tmp_path, **env) as s:
        s.process.send_signal(signal.SIGTERM)
        wait_for(
            lambda: http("GET", f"{s.url}/v2/health/ready")[0] == 503,
            timeout=10,
            what="readiness 503 after SIGTERM",
        )
        assert s.process.poll() is None, "it stopped at once instead of draining"
        assert http("POST", f"{s.url}/v2/models/wine/infer", v2_body(wine_row))[0] == 200
        assert http("GET", f"{s.url}/v2/health/live")[0] == 200
        assert s.process.wait(timeout=30) == 0
    assert any(line.get("msg") == "draining" for line in s.log_lines())


def missing_count(server: Server, feature: str) -> float:
    value = label(
        metric_samples(server.metrics(), "modelserver_feature_missing_total"), feature=feature
    )
    assert value is not None
    return value


def test_metrics_count_requests_by_endpoint_and_code(
    server: Server, wine_row: dict[str, float]
) -> None:
    http("POST", f"{server.url}/v2/models/wine/infer", '{"inputs": [')
    missing_before = missing_count(server, "hue")
    no_hue = {k: v for k, v in wine_row.items() if k != "hue"}
    assert http("POST", f"{server.url}/v2/models/wine/infer", v2_body(no_hue))[0] == 400
    assert missing_count(server, "hue") == missing_before + 1
    text = server.metrics()
    requests = metric_samples(text, "modelserver_requests_total")
    assert label(requests, endpoint="infer", code="400", model_name="wine", model_version="1")
    info = metric_samples(text, "modelserver_model_info")
    assert label(info, revision="abc123") == 1
    assert "modelserver_request_duration_seconds_bucket" in text
    # The window is far below its minimum: drift gauges are absent, not zero.
    assert "modelserver_feature_drift_psi{" not in text
    assert label(metric_samples(text, "modelserver_drift_window_samples")) is not None


def test_fault_injection_answers_500_at_the_configured_rate(
    models: dict[str, dict[str, Any]], tmp_path: Path, wine_row: dict[str, float]
) -> None:
    env = {"MODELSERVER_FAULT_ERROR_RATE": "0.5"}
    with running_server(models["wine-improved"], tmp_path, **env) as s:
        codes = [
            http("POST", f"{s.url}/v2/models/wine/infer", v2_body(wine_row))[0] for _ in range(10)
        ]
        assert sorted(codes) == [200] * 5 + [500] * 5
        requests = metric_samples(s.metrics(), "modelserver_requests_total")
        assert label(requests, endpoint="infer", code="500") == 5


def start_and_fail(env: dict[str, str]) -> str:
    full = {
        **os.environ,
        "MODELSERVER_HOST": "127.0.0.1",
        "MODELSERVER_PORT": str(free_port()),
        "MODELSERVER_GRPC_PORT": "0",
        **env,
    }
    done = subprocess.run([CLI, "serve"], env=full, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    return done.stderr


def test_a_digest_mismatch_stops_start_up_with_a_clear_message(
    models: dict[str, dict[str, Any]],
) -> None:
    model = models["wine-improved"]
    log = start_and_fail({"MODEL_URI": model["uri"], "MODEL_SHA256": "ab" * 32})
    assert "sha256 mismatch" in log
    assert model["sha256"] in log


def test_a_pickle_stops_start_up_unless_allowed(
    models: dict[str, dict[str, Any]], tmp_path: Path, wine_row: dict[str, float]
) -> None:
    path = tmp_path / "wine.pkl"
    source = models["wine-improved"]["path"]
    path.write_bytes(
        pickle.dumps(skops.io.load(source, trusted=skops.io.get_untrusted_types(file=source)))
    )
    Path(f"{path}.profile.json").write_text(Path(models["wine-improved"]["profile"]).read_text())
    log = start_and_fail({"MODEL_URI": str(path)})
    assert "pickle/joblib files run arbitrary code" in log
    assert "MODELSERVER_ALLOW_PICKLE" in log
    artifact = {"uri": str(path), "sha256": ""}
    with running_server(artifact, tmp_path, MODELSERVER_ALLOW_PICKLE="true") as s:
        assert http("POST", f"{s.url}/v2/models/wine/infer", v2_body(wine_row))[0] == 200


def test_missing_settings_are_reported_without_a_traceback() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL")}
    done = subprocess.run([CLI, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "MODEL_URI" in done.stderr
    assert "Traceback" not in done.stderr


def test_schemathesis_finds_no_server_errors(server: Server, tmp_path: Path) -> None:
    st = str(Path(CLI).with_name("schemathesis"))
    done = subprocess.run(
        [st, "run", f"{server.url}/openapi.json", "--checks", "not_a_server_error",
         "--max-examples", "35", "--seed", "1", "--request-timeout", "10"],
        capture_output=True, text=True, timeout=500, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:]
