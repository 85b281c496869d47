"""http(s) artifacts: downloaded from a real store on loopback (tests/support/store.py)
serving a real trained pipeline, verified like a local file, bounded, and never showing
a presigned URL's query string; start-up refusals reach the termination message file."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ms_helpers import CLI, http, running_server, v2_body
from prometheus_client import CollectorRegistry

from modelrollout.devenv.ports import free_port
from modelserver import fetch
from modelserver.artifact import ArtifactError
from modelserver.logs import JsonFormatter
from modelserver.server import TERMINATION_MESSAGE_BYTES, write_termination_message
from modelserver.service import ModelService, load_service
from modelserver.settings import Settings, SettingsError
from support.store import Store, running_store
from support.tls_proxy import make_certificates
from support.waiting import wait_for

SECRET = "X-Amz-Signature=zq7Xsecret"
ARTIFACT = "/models/wine-improved.skops"
PROFILE = ARTIFACT + ".profile.json"


@pytest.fixture
def wine(models: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return models["wine-improved"]


@pytest.fixture
def store(wine: dict[str, Any]) -> Iterator[Store]:
    """A store holding the trained wine pipeline and its profile beside it."""
    with running_store() as s:
        s.put_file(ARTIFACT, wine["path"])
        s.put_file(PROFILE, wine["profile"])
        yield s


def load(url: str, sha256: str, **settings: Any) -> ModelService:
    config = Settings(
        model_name="wine",
        model_uri=url,
        model_sha256=sha256,
        artifact_retry_backoff_seconds=0.01,
        **settings,
    )
    return load_service(config, CollectorRegistry())


def refusal(url: str, sha256: str = "", **settings: Any) -> str:
    with pytest.raises(ArtifactError) as caught:
        load(url, sha256, **settings)
    return str(caught.value)


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """The records as the server writes them: JSON lines with their extra fields."""
    return "\n".join(JsonFormatter().format(r) for r in caplog.records)


def predict(service: ModelService, row: dict[str, float]) -> list[Any]:
    decoded = service.decode_v2(json.loads(v2_body(row)), "r1")
    [result] = service.infer([decoded])
    return list(result.labels.tolist())


# -- pure rules ------------------------------------------------------------------------------


@pytest.mark.unit
def test_urls_are_shown_without_query_fragment_or_credentials() -> None:
    assert fetch.redact(f"https://b.s3.amazonaws.com/m/x.skops?{SECRET}#f") == (
        "https://b.s3.amazonaws.com/m/x.skops?<redacted>"
    )
    assert fetch.redact("http://u:pw@store:8080/x.onnx") == "http://store:8080/x.onnx"
    assert fetch.redact("http://store/x.onnx") == "http://store/x.onnx"
    assert fetch.display_uri("/models/x.skops") == "/models/x.skops"
    assert fetch.redact(f"http://[::1/x.skops?{SECRET}") == "http://<unparseable URL>"
    for malformed in (f"http://[::1/x.skops?{SECRET}", f"http://store:port/x.skops?{SECRET}"):
        with pytest.raises(ArtifactError, match="is malformed") as caught:
            fetch.Fetcher(Path("/nonexistent"), fetch.Policy(1, 1, 1, 0, 0)).download(
                malformed, "model artifact"
            )
        assert "zq7Xsecret" not in str(caught.value)


@pytest.mark.unit
def test_the_profile_url_is_derived_like_the_local_path() -> None:
    assert fetch.profile_url(f"https://store/a/b/m.skops?{SECRET}") == (
        "https://store/a/b/m.skops.profile.json"
    )
    assert fetch.local_name("https://store/a/m%20v2.skops?x=1") == "m_v2.skops"
    with pytest.raises(ArtifactError, match="names no file"):
        fetch.local_name("https://store/a/")


@pytest.mark.unit
def test_download_settings_are_read_and_checked() -> None:
    env = {
        "MODEL_URI": "https://store/m.skops",
        "MODELSERVER_ARTIFACT_DIR": "/var/cache/modelserver",
        "MODELSERVER_ARTIFACT_MAX_BYTES": "1000",
        "MODELSERVER_ARTIFACT_RETRIES": "0",
        "MODELSERVER_ARTIFACT_READ_TIMEOUT_SECONDS": "2.5",
        "MODELSERVER_ARTIFACT_TOKEN": "t0ken-value",
    }
    settings = Settings.from_env(env)
    assert (settings.artifact_max_bytes, settings.artifact_retries) == (1000, 0)
    assert settings.artifact_read_timeout_seconds == 2.5
    assert "t0ken-value" not in repr(settings)
    defaults = Settings(model_uri="x")
    assert defaults.artifact_max_bytes == 2 * 1024**3
    assert defaults.termination_log == "/dev/termination-log"
    with pytest.raises(SettingsError, match="not both"):
        Settings.from_env({**env, "MODELSERVER_ARTIFACT_TOKEN_FILE": "/t"})
    with pytest.raises(SettingsError, match="RETRIES must not be negative"):
        Settings.from_env({**env, "MODELSERVER_ARTIFACT_RETRIES": "-1"})
    with pytest.raises(SettingsError, match="MAX_BYTES must be positive"):
        Settings.from_env({**env, "MODELSERVER_ARTIFACT_MAX_BYTES": "0"})


@pytest.mark.unit
def test_the_termination_message_is_written_only_where_the_kubelet_made_the_file(
    tmp_path: Path,
) -> None:
    present = tmp_path / "termination-log"
    present.write_text("an older message that is longer than the new one\n")
    write_termination_message(str(present), "cannot serve x: why")
    assert present.read_text() == "cannot serve x: why"
    write_termination_message(str(present), "é" * TERMINATION_MESSAGE_BYTES)
    assert len(present.read_bytes()) <= TERMINATION_MESSAGE_BYTES
    present.read_text(encoding="utf-8")  # not cut inside a character
    absent = tmp_path / "absent"
    write_termination_message(str(absent), "never written")
    assert not absent.exists()
    write_termination_message("", "disabled")
    write_termination_message(str(tmp_path), "a directory is not writable as a file")


# -- downloads, in process -------------------------------------------------------------------


@pytest.mark.integration
def test_an_http_artifact_is_downloaded_verified_and_served(
    store: Store, wine: dict[str, Any], wine_row: dict[str, float], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="modelserver")
    service = load(f"{store.url}{ARTIFACT}?{SECRET}", "sha256:" + wine["sha256"].upper())
    assert service.sha256 == wine["sha256"]
    assert predict(service, wine_row) == ["class_0"]
    [artifact_request] = store.requests(ARTIFACT)
    assert artifact_request.query == SECRET  # the presigned query reached the store...
    [profile_request] = store.requests(PROFILE)
    assert profile_request.query == ""  # ...and only for the object it was signed for
    [downloading] = [r for r in caplog.records if r.getMessage() == "downloading"]
    assert not Path(downloading.__dict__["dir"]).exists()  # the temporary copy is gone
    assert "zq7Xsecret" not in logged(caplog)
    assert f"{store.url}{ARTIFACT}?<redacted>" in logged(caplog)


@pytest.mark.integration
def test_a_digest_mismatch_over_http_is_refused_naming_both_digests_and_the_url(
    store: Store, wine: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="modelserver")
    cache = tmp_path / "cache"
    message = refusal(f"{store.url}{ARTIFACT}?{SECRET}", "ab" * 32, artifact_dir=str(cache))
    assert message.startswith(f"sha256 mismatch for {store.url}{ARTIFACT}?<redacted>: ")
    assert f"expected {'ab' * 32}, the download has {wine['sha256']}" in message
    assert "zq7Xsecret" not in message + logged(caplog)
    assert list(cache.iterdir()) == []  # the wrong bytes never land in the cache
    assert len(store.requests(ARTIFACT)) == 1  # the wrong object is not fetched again


@pytest.mark.integration
def test_a_404_is_a_clear_error_and_not_retried(store: Store) -> None:
    message = refusal(f"{store.url}/models/gone.skops?{SECRET}", artifact_retries=3)
    assert message == (
        f"cannot download the model artifact {store.url}/models/gone.skops?<redacted>: "
        "HTTP 404 Not Found; no such object, not retried: check MODEL_URI"
    )
    assert len(store.requests("/models/gone.skops")) == 1


@pytest.mark.integration
def test_a_missing_profile_beside_a_remote_artifact_says_where_it_was_looked_for(
    store: Store, wine: dict[str, Any]
) -> None:
    store.put_file("/alone/wine.skops", wine["path"])
    message = refusal(f"{store.url}/alone/wine.skops?{SECRET}", wine["sha256"])
    assert f"reference profile {store.url}/alone/wine.skops.profile.json: HTTP 404" in message
    assert "MODELSERVER_PROFILE_URI" in message


@pytest.mark.integration
def test_a_503_then_200_is_retried_and_succeeds(
    store: Store, wine: dict[str, Any], wine_row: dict[str, float], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="modelserver")
    store.put_file(ARTIFACT, wine["path"], failures=[503])
    service = load(f"{store.url}{ARTIFACT}", wine["sha256"], artifact_retries=2)
    assert predict(service, wine_row) == ["class_0"]
    assert len(store.requests(ARTIFACT)) == 2
    [retry] = [r for r in caplog.records if r.getMessage() == "download failed, retrying"]
    assert retry.__dict__["reason"] == "HTTP 503 Service Unavailable"


@pytest.mark.integration
def test_5xx_retries_are_bounded(store: Store, wine: dict[str, Any]) -> None:
    store.put_file(ARTIFACT, wine["path"], failures=[500] * 10)
    message = refusal(f"{store.url}{ARTIFACT}?{SECRET}", wine["sha256"], artifact_retries=2)
    assert message.startswith(
        f"cannot download the model artifact {store.url}{ARTIFACT}?<redacted>: "
        "HTTP 500 Internal Server Error (attempt 3 of 3); "
    )
    assert len(store.requests(ARTIFACT)) == 3


@pytest.mark.integration
def test_a_truncated_download_is_refused_and_leaves_no_partial_file(
    store: Store, wine: dict[str, Any], tmp_path: Path
) -> None:
    body = Path(wine["path"]).read_bytes()
    store.put(ARTIFACT, body, truncate_at=len(body) // 2)
    cache = tmp_path / "cache"
    message = refusal(
        f"{store.url}{ARTIFACT}?{SECRET}",
        wine["sha256"],
        artifact_dir=str(cache),
        artifact_retries=1,
    )
    assert (
        f"the connection closed after {len(body) // 2} of {len(body)} bytes (truncated) "
        "(attempt 2 of 2)"
    ) in message
    assert "zq7Xsecret" not in message
    assert len(store.requests(ARTIFACT)) == 2  # a broken transfer is worth another try
    assert list(cache.iterdir()) == []


@pytest.mark.integration
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
def test_an_oversized_download_is_refused_and_leaves_no_partial_file(
    store: Store, wine: dict[str, Any], tmp_path: Path, declared: bool
) -> None:
    body = Path(wine["path"]).read_bytes()
    store.put(ARTIFACT, body, declare_length=declared)
    cache = tmp_path / "cache"
    limit = len(body) - 1
    message = refusal(
        f"{store.url}{ARTIFACT}", wine["sha256"], artifact_dir=str(cache), artifact_max_bytes=limit
    )
    says = f"it is {len(body)} bytes" if declared else f"more than {limit} bytes arrived"
    assert says in message
    assert "MODELSERVER_ARTIFACT_MAX_BYTES" in message
    assert len(store.requests(ARTIFACT)) == 1  # a size limit is not a transient failure
    assert list(cache.iterdir()) == []


@pytest.mark.integration
def test_a_configured_directory_keeps_a_verified_artifact_for_the_next_start(
    store: Store, wine: dict[str, Any], tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    for _ in range(2):
        load(f"{store.url}{ARTIFACT}", wine["sha256"], artifact_dir=str(cache))
    assert len(store.requests(ARTIFACT)) == 1
    assert len(store.requests(PROFILE)) == 2  # small, and it has no digest to trust
    assert sorted(p.name for p in cache.iterdir()) == [
        "wine-improved.skops",
        "wine-improved.skops.profile.json",
    ]


@pytest.mark.integration
def test_a_private_store_over_https_with_a_token_and_a_ca_file(
    wine: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="modelserver")
    tls = make_certificates(tmp_path / "tls")
    token = "s3cr3t-bearer-token"
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    with running_store(tls=(tls.cert, tls.key), token=token) as store:
        store.put_file(ARTIFACT, wine["path"])
        store.put_file(PROFILE, wine["profile"])
        url = f"{store.url}{ARTIFACT}?{SECRET}"
        untrusted = refusal(url, wine["sha256"], artifact_token_file=str(token_file))
        assert "TLS failed (certificate verification failed" in untrusted
        assert "MODELSERVER_ARTIFACT_CA_FILE" in untrusted
        no_token = refusal(url, wine["sha256"], artifact_ca_file=str(tls.ca), artifact_retries=3)
        assert "HTTP 401 Unauthorized; the store refused access, not retried" in no_token
        service = load(
            url, wine["sha256"], artifact_ca_file=str(tls.ca), artifact_token_file=str(token_file)
        )
        assert service.sha256 == wine["sha256"]
        assert store.requests()[-1].authorization == f"Bearer {token}"
    assert token not in logged(caplog) + untrusted + no_token
    assert "zq7Xsecret" not in logged(caplog) + untrusted + no_token


@pytest.mark.integration
def test_the_token_does_not_follow_a_redirect_to_another_host(
    wine: dict[str, Any], tmp_path: Path
) -> None:
    with running_store(token="t0k") as origin, running_store() as objects:
        signed = objects.put_file("/bucket/wine.skops", wine["path"]) + f"?{SECRET}"
        origin.put(ARTIFACT, b"", redirect_to=signed)
        origin.put_file(PROFILE, wine["profile"])
        load(f"{origin.url}{ARTIFACT}", wine["sha256"], artifact_token="t0k")
        [followed] = objects.requests("/bucket/wine.skops")
        assert (followed.authorization, followed.query) == (None, SECRET)
        assert origin.requests(PROFILE)[0].authorization == "Bearer t0k"


# -- the server process ----------------------------------------------------------------------


@pytest.mark.integration
def test_readiness_is_503_while_the_artifact_downloads(
    wine: dict[str, Any], tmp_path: Path, wine_row: dict[str, float]
) -> None:
    gate = threading.Event()
    with running_store() as store:
        url = store.put_file(ARTIFACT, wine["path"], gate=gate) + f"?{SECRET}"
        store.put_file(PROFILE, wine["profile"])
        artifact = {"uri": url, "sha256": wine["sha256"]}
        with running_server(artifact, tmp_path, wait_ready=False) as s:
            wait_for(
                lambda: store.requests(ARTIFACT), timeout=60, what="the server to ask the store"
            )
            status, body, _ = http("GET", f"{s.url}/v2/health/ready")
            assert (status, body["ready"]) == (503, False)
            assert http("POST", f"{s.url}/v2/models/wine/infer", v2_body(wine_row))[0] == 503
            assert http("GET", f"{s.url}/v2/health/live")[0] == 200
            gate.set()
            s.wait_until("/v2/health/ready", "readiness once the download is complete")
            status, body, _ = http("POST", f"{s.url}/v2/models/wine/infer", v2_body(wine_row))
            assert (status, body["outputs"][0]["data"]) == (200, ["class_0"])
            done = {line["what"]: line for line in s.log_lines() if line["msg"] == "downloaded"}
            assert done["model artifact"]["sha256"] == wine["sha256"]
            assert done["model artifact"]["url"] == f"{store.url}{ARTIFACT}?<redacted>"
            assert done["reference profile"]["url"] == f"{store.url}{PROFILE}"
            assert "zq7Xsecret" not in s.log.read_text()


@pytest.mark.integration
def test_a_stop_during_a_stalled_download_is_prompt(wine: dict[str, Any], tmp_path: Path) -> None:
    with running_store() as store:
        # Held back for up to a minute, within the default 60 s read timeout.
        url = store.put_file(ARTIFACT, wine["path"], gate=threading.Event())
        with running_server({"uri": url, "sha256": ""}, tmp_path, wait_ready=False) as s:
            wait_for(
                lambda: store.requests(ARTIFACT), timeout=60, what="the server to ask the store"
            )
            s.process.send_signal(signal.SIGTERM)
            assert s.process.wait(timeout=20) == 0


def serve_and_fail(env: dict[str, str], termination_log: Path) -> tuple[int, str]:
    full = {
        **os.environ,
        "MODELSERVER_HOST": "127.0.0.1",
        "MODELSERVER_PORT": str(free_port()),
        "MODELSERVER_GRPC_PORT": "0",
        "MODELSERVER_TERMINATION_LOG": str(termination_log),
        "MODELSERVER_ARTIFACT_RETRY_BACKOFF_SECONDS": "0.01",
        **env,
    }
    done = subprocess.run([CLI, "serve"], env=full, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stderr


@pytest.mark.integration
@pytest.mark.parametrize("case", ["404", "mismatch"])
def test_a_refused_download_exits_1_and_writes_the_termination_message(
    store: Store, wine: dict[str, Any], tmp_path: Path, case: str
) -> None:
    termination_log = tmp_path / "termination-log"
    termination_log.touch()  # the kubelet creates it; the server only writes it
    path = "/models/gone.skops" if case == "404" else ARTIFACT
    url = f"{store.url}{path}?{SECRET}"
    code, stderr = serve_and_fail({"MODEL_URI": url, "MODEL_SHA256": "ab" * 32}, termination_log)
    assert code == 1
    message = termination_log.read_text()
    assert message.startswith(f"cannot serve {store.url}{path}?<redacted>: ")
    if case == "404":
        assert "HTTP 404 Not Found; no such object, not retried" in message
    else:
        assert f"expected {'ab' * 32}, the download has {wine['sha256']}" in message
    [error] = [json.loads(line) for line in stderr.splitlines() if '"ERROR"' in line]
    assert error["msg"] == message
    assert "zq7Xsecret" not in stderr + message
