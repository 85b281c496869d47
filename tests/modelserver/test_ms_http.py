"""The server as a process on a loopback port: protocol, bad input over HTTP, metrics, start-up."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import skops.io
from ms_helpers import CLI, Server, http, label, metric_samples, running_server, v2_body

from modelrollout.devenv.ports import free_port

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


def test_metrics_count_requests_by_endpoint_and_code(
    server: Server, wine_row: dict[str, float]
) -> None:
    http("POST", f"{server.url}/v2/models/wine/infer", '{"inputs": [')
    text = server.metrics()
    requests = metric_samples(text, "modelserver_requests_total")
    assert label(requests, endpoint="infer", code="400", model_name="wine", model_version="1")
    info = metric_samples(text, "modelserver_model_info")
    assert label(info, revision="abc123") == 1
    missing = metric_samples(text, "modelserver_feature_missing_total")
    assert label(missing, feature="hue") is not None
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
         "--max-examples", "25", "--seed", "1", "--request-timeout", "10"],
        capture_output=True, text=True, timeout=500, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:]
