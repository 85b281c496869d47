"""MODEL_URI=models:/NAME/VERSION and models:/NAME@ALIAS: resolved in an MLflow registry over
its REST API, downloaded through the verified downloader, refused clearly otherwise.

The registry here is a tiny fake of the three MLflow REST calls the server makes (and the
artifact proxy of `mlflow server --serve-artifacts`), on loopback: these tests are about
the server's side of the contract; the integration tests run the real MLflow server.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from prometheus_client import CollectorRegistry
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelserver import registry
from modelserver.artifact import ArtifactError
from modelserver.packaging import Packaged, package
from modelserver.service import ModelService, load_service
from modelserver.settings import Settings

pytestmark = pytest.mark.unit

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts/"
SOURCE = "mlflow-artifacts:/1/run1/artifacts/model"
TOKEN = "s3cr3t-token"


@dataclass
class FakeMlflow:
    """model versions, aliases and runs as MLflow's REST API answers them; artifacts
    from `root` (the experiment/run/artifacts/... tree)."""

    root: Path
    versions: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    aliases: dict[tuple[str, str], str] = field(default_factory=dict)
    runs: dict[str, str] = field(default_factory=dict)
    authorization: str = ""
    seen_auth: list[str] = field(default_factory=list)
    url: str = ""

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, bytes]:
        if path == "/api/2.0/mlflow/model-versions/get":
            mv = self.versions.get((query.get("name", ""), query.get("version", "")))
            return self._mv(mv, "RESOURCE_DOES_NOT_EXIST", "Model Version not found")
        if path == "/api/2.0/mlflow/registered-models/alias":
            version = self.aliases.get((query.get("name", ""), query.get("alias", "")))
            mv = self.versions.get((query.get("name", ""), version or ""))
            alias = query.get("alias")
            return self._mv(
                mv, "INVALID_PARAMETER_VALUE", f"Registered model alias {alias} not found."
            )
        if path == "/api/2.0/mlflow/runs/get":
            uri = self.runs.get(query.get("run_id", ""))
            if uri is None:
                return 404, json.dumps({"error_code": "RESOURCE_DOES_NOT_EXIST"}).encode()
            return 200, json.dumps({"run": {"info": {"artifact_uri": uri}}}).encode()
        if path.startswith(ARTIFACTS):
            file = self.root / unquote(path[len(ARTIFACTS) :])
            if file.is_file():
                return 200, file.read_bytes()
        return 404, b'{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such file"}'

    @staticmethod
    def _mv(mv: dict[str, Any] | None, code: str, message: str) -> tuple[int, bytes]:
        if mv is None:
            status = 404 if code == "RESOURCE_DOES_NOT_EXIST" else 400
            return status, json.dumps({"error_code": code, "message": message}).encode()
        return 200, json.dumps({"model_version": mv}).encode()


@contextlib.contextmanager
def running_mlflow(root: Path) -> Iterator[FakeMlflow]:
    fake = FakeMlflow(root)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            given = self.headers.get("Authorization", "")
            fake.seen_auth.append(given)
            if fake.authorization and given != fake.authorization:
                status, body = 401, b'{"error_code": "UNAUTHENTICATED"}'
            else:
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                status, body = fake.answer(parts.path, query)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    """A small pipeline of one's own, packaged (model.skops, .sha256, .profile.json, card)."""
    frame = load_iris(as_frame=True).frame
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    pipeline.fit(frame.drop(columns="target"), frame["target"])
    out = tmp_path_factory.mktemp("iris") / "pkg"
    return package(pipeline, frame, "target", out, name="iris")


def version(
    number: str, sha256: str, source: str = SOURCE, status: str = "READY", tagged: bool = True
) -> dict[str, Any]:
    tags = [{"key": registry.ARTIFACT_TAG, "value": "model.skops"}]
    if tagged:
        tags.append({"key": registry.SHA256_TAG, "value": sha256})
    return {
        "name": "iris",
        "version": number,
        "source": source,
        "run_id": "run1",
        "status": status,
        "tags": tags,
    }


@pytest.fixture
def mlflow(tmp_path: Path, packaged: Packaged) -> Iterator[FakeMlflow]:
    shutil.copytree(packaged.directory, tmp_path / "1/run1/artifacts/model")
    with running_mlflow(tmp_path) as fake:
        fake.versions[("iris", "3")] = version("3", packaged.sha256)
        fake.aliases[("iris", "champion")] = "3"
        yield fake


def load(uri: str, tracking: str, **settings: Any) -> ModelService:
    config = Settings(
        model_name="iris",
        model_uri=uri,
        mlflow_tracking_uri=tracking,
        artifact_retry_backoff_seconds=0.01,
        **settings,
    )
    return load_service(config, CollectorRegistry())


def refusal(uri: str, tracking: str, **settings: Any) -> str:
    with pytest.raises(ArtifactError) as caught:
        load(uri, tracking, **settings)
    return str(caught.value)


def predict(service: ModelService) -> list[Any]:
    row = {f.name: 5.0 for f in service.profile.features}
    body = {
        "inputs": [
            {"name": k, "datatype": "FP64", "shape": [1], "data": [v]} for k, v in row.items()
        ]
    }
    [result] = service.infer([service.decode_v2(body, "r1")])
    return list(result.labels.tolist())


def test_load_by_version_and_infer(
    mlflow: FakeMlflow, packaged: Packaged, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="modelserver")
    service = load("models:/iris/3", mlflow.url)
    assert service.sha256 == packaged.sha256
    assert len(predict(service)) == 1
    assert service.metadata()["parameters"]["registry_version"] == "3"
    assert "resolved registry model iris version 3" in caplog.text


def test_load_by_alias_with_credentials_never_logged(
    mlflow: FakeMlflow, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="modelserver")
    mlflow.authorization = f"Bearer {TOKEN}"
    service = load("models:/iris@champion", mlflow.url, mlflow_tracking_token=TOKEN)
    assert service.metadata()["parameters"]["registry_version"] == "3"
    assert len(predict(service)) == 1
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(Settings(model_uri="x", mlflow_tracking_token=TOKEN))


def test_basic_auth_and_a_refusal_names_the_variables(mlflow: FakeMlflow) -> None:
    mlflow.authorization = "Basic " + base64.b64encode(b"u:pw").decode()
    load("models:/iris/3", mlflow.url, mlflow_tracking_username="u", mlflow_tracking_password="pw")
    message = refusal("models:/iris/3", mlflow.url, mlflow_tracking_token="wrong")
    assert "HTTP 401" in message and "MLFLOW_TRACKING_TOKEN" in message and "wrong" not in message


def test_a_runs_source_is_resolved_through_the_run(mlflow: FakeMlflow) -> None:
    mlflow.runs["run1"] = "mlflow-artifacts:/1/run1/artifacts"
    mlflow.versions[("iris", "4")] = version(
        "4", mlflow.versions[("iris", "3")]["tags"][1]["value"], source="runs:/run1/model"
    )
    assert load("models:/iris/4", mlflow.url).metadata()["parameters"]["registry_version"] == "4"


def test_a_tampered_artifact_is_refused(mlflow: FakeMlflow, packaged: Packaged) -> None:
    (mlflow.root / "1/run1/artifacts/model/model.skops").write_bytes(b"not the model")
    message = refusal("models:/iris/3", mlflow.url)
    assert "sha256 mismatch" in message and packaged.sha256 in message


def test_a_model_sha256_other_than_the_tag_is_refused_naming_both(
    mlflow: FakeMlflow, packaged: Packaged
) -> None:
    other = "0" * 64
    message = refusal("models:/iris/3", mlflow.url, model_sha256=other)
    assert other in message and packaged.sha256 in message
    assert load("models:/iris/3", mlflow.url, model_sha256=packaged.sha256.upper())


def test_a_version_without_a_digest_is_refused_unless_model_sha256_is_set(
    mlflow: FakeMlflow, packaged: Packaged
) -> None:
    mlflow.versions[("iris", "5")] = version("5", "", tagged=False)
    message = refusal("models:/iris/5", mlflow.url)
    assert "modelrollout register" in message and "MODEL_SHA256" in message
    assert load("models:/iris/5", mlflow.url, model_sha256=packaged.sha256)


def test_a_version_not_ready_is_refused(mlflow: FakeMlflow, packaged: Packaged) -> None:
    mlflow.versions[("iris", "6")] = version("6", packaged.sha256, status="PENDING_REGISTRATION")
    assert "PENDING_REGISTRATION, not READY" in refusal("models:/iris/6", mlflow.url)


def test_missing_version_or_alias_is_a_clear_error(mlflow: FakeMlflow) -> None:
    message = refusal("models:/iris/9", mlflow.url)
    assert "HTTP 404" in message and "MODEL_URI" in message and "127.0.0.1" in message
    message = refusal("models:/iris@nope", mlflow.url)
    assert "alias nope not found" in message and "MODEL_URI" in message


def test_a_missing_profile_in_the_version_directory_is_named(mlflow: FakeMlflow) -> None:
    (mlflow.root / "1/run1/artifacts/model/model.skops.profile.json").unlink()
    message = refusal("models:/iris/3", mlflow.url)
    assert "reference profile" in message and "model.skops.profile.json" in message


def test_an_unreachable_registry_fails_within_bounded_time() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    message = refusal("models:/iris/3", f"http://127.0.0.1:{port}", artifact_retries=1)
    assert time.monotonic() - started < 5
    assert "MLFLOW_TRACKING_URI" in message and f"127.0.0.1:{port}" in message


def test_the_tracking_uri_is_required_and_must_be_http() -> None:
    assert "MLFLOW_TRACKING_URI is not set" in refusal("models:/iris/3", "")
    assert "http:// or https://" in refusal("models:/iris/3", "file:///mlruns")


@pytest.mark.parametrize(
    "source", ["s3://bucket/1/run1/artifacts/model", "gs://b/m", "file:///mlruns/m", "/mlruns/m"]
)
def test_sources_not_downloadable_over_http_are_refused(
    mlflow: FakeMlflow, packaged: Packaged, source: str
) -> None:
    mlflow.versions[("iris", "7")] = version("7", packaged.sha256, source=source)
    assert "--serve-artifacts" in refusal("models:/iris/7", mlflow.url)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("models:/iris/latest", "use a version number or @alias"),
        ("models:/iris/Production", "use a version number or @alias"),
        ("models:/iris", "malformed"),
        ("models:/iris@", "malformed"),
        ("models:/a/b/3", "malformed"),
        ("models:iris/3", "not a registry URI"),
    ],
)
def test_bad_uri_forms_are_refused(uri: str, expected: str) -> None:
    with pytest.raises(registry.RegistryError, match=expected):
        registry.parse(uri)


def test_uri_forms_parse() -> None:
    assert registry.parse("models:/iris/3") == registry.ModelRef("iris", version="3")
    assert registry.parse("models:/iris@champion") == registry.ModelRef("iris", alias="champion")
