"""Downloading an http(s) artifact and its reference profile before they are inspected.

Users ship artifacts from an artifact store (S3/GCS presigned URLs, an MLflow
artifact server, a plain web server), so `MODEL_URI` may be `http://` or
`https://`. At start-up, before readiness turns true, the artifact and its
profile (`<artifact URL path>.profile.json`, as a local artifact has
`<artifact path>.profile.json`) are streamed into MODELSERVER_ARTIFACT_DIR: into
a `.partial` file, hashed as they arrive, and renamed into place only once
complete, of the announced length and (for the artifact) of the digest
MODEL_SHA256 names. The local file then goes through the same inspection as a
mounted one (artifact.inspect), so nothing about formats or digests is decided
twice.

Bounded: connect and read timeouts, a maximum size, and a few retries with
exponential backoff for connection failures, truncated bodies and 5xx answers;
a 4xx is the store's final word and is not retried. Every failure is an
ArtifactError naming the URL without its query string: presigned URLs carry
their credentials there, so the query is never logged nor put in a message.
A bearer token for private stores is sent only to the URL's own origin (never
across a redirect to another host, e.g. to a presigned object URL), and never
logged.

Why urllib.request: one sequential GET per file needs no connection pool nor an
event loop (the download runs on the loading thread, beside the event loop that
keeps answering health checks); aiohttp, already a dependency, would need a
second loop in that thread, and requests is not one of the model server's
dependencies. What urllib lacks, a read timeout distinct from the connect
timeout, is the two small connection classes below.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import re
import shutil
import socket
import ssl
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from modelserver import artifact, registry
from modelserver.artifact import ArtifactError
from modelserver.settings import Settings

log = logging.getLogger("modelserver")
T = TypeVar("T")

CHUNK_BYTES = 1 << 20
PROFILE_SUFFIX = ".profile.json"
# Backoff doubles per attempt from MODELSERVER_ARTIFACT_RETRY_BACKOFF_SECONDS, up to this.
MAX_BACKOFF_SECONDS = 30.0
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def redact(url: str) -> str:
    """The URL as it may be shown: no query string (`?<redacted>` says there was one),
    no fragment, no user:password@."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed [IPv6 address
        return url.partition(":")[0] + "://<unparseable URL>"
    host = parts.netloc.rpartition("@")[2]
    shown = f"{parts.scheme}://{host}{parts.path}"
    return shown + "?<redacted>" if parts.query else shown


def display_uri(uri: str) -> str:
    """MODEL_URI or MODELSERVER_PROFILE_URI as logs and messages show it."""
    return redact(uri) if artifact.is_remote(uri) else uri


def profile_url(artifact_url: str) -> str:
    """`<artifact URL path>.profile.json` on the same host, like the local rule.

    The artifact's query string is not carried over: a presigned URL's signature
    is for that one object and would be refused for another (such artifacts need
    MODELSERVER_PROFILE_URI set to the profile's own presigned URL).
    """
    parts = urlsplit(artifact_url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path + PROFILE_SUFFIX, "", ""))


def local_name(url: str) -> str:
    """The cache file name for `url`: the last path segment, kept to safe characters
    (its suffix tells the artifact's format)."""
    name = _UNSAFE_NAME.sub("_", unquote(urlsplit(url).path).rpartition("/")[2])[-200:]
    if not name.strip("._"):
        raise ArtifactError(
            f"{redact(url)} names no file: the URL's path must end with the artifact's file "
            "name (e.g. .../model.skops), whose suffix tells its format"
        )
    return name


@dataclass(frozen=True)
class Policy:
    """How downloads are made; built once from the settings."""

    max_bytes: int
    connect_timeout: float
    read_timeout: float
    retries: int
    backoff: float
    token: str = field(default="", repr=False)
    ca_file: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            max_bytes=settings.artifact_max_bytes,
            connect_timeout=settings.artifact_connect_timeout_seconds,
            read_timeout=settings.artifact_read_timeout_seconds,
            retries=settings.artifact_retries,
            backoff=settings.artifact_retry_backoff_seconds,
            token=_token(settings),
            ca_file=settings.artifact_ca_file,
        )


def _token(settings: Settings) -> str:
    if settings.artifact_token_file:
        path = Path(settings.artifact_token_file)
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ArtifactError(
                f"cannot read MODELSERVER_ARTIFACT_TOKEN_FILE {path}: {reason}"
            ) from None
        if not token:
            raise ArtifactError(f"MODELSERVER_ARTIFACT_TOKEN_FILE {path} is empty")
    else:
        token = settings.artifact_token.strip()
    # A bearer token is visible ASCII (RFC 6750); anything else could split the header.
    if token and not all(0x21 <= ord(c) <= 0x7E for c in token):
        raise ArtifactError(
            "the artifact store token (MODELSERVER_ARTIFACT_TOKEN[_FILE]) contains spaces, "
            "control or non-ASCII characters; a bearer token cannot"
        )
    return token


class _PlainConnection(http.client.HTTPConnection):
    """Connects within the connect timeout, then waits at most `read_timeout` per read."""

    def __init__(self, host: str, /, *, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._read_timeout = read_timeout

    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(self._read_timeout)


class _TlsConnection(http.client.HTTPSConnection):
    """The same for HTTPS; the TLS handshake is part of connecting."""

    def __init__(self, host: str, /, *, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._read_timeout = read_timeout

    def connect(self) -> None:
        super().connect()
        self.sock.settimeout(self._read_timeout)


class _HttpHandler(urllib.request.HTTPHandler):
    def __init__(self, read_timeout: float) -> None:
        super().__init__()
        self._read_timeout = read_timeout

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        def connection(host: str, /, **kwargs: Any) -> http.client.HTTPConnection:
            return _PlainConnection(host, read_timeout=self._read_timeout, **kwargs)

        return self.do_open(connection, req)


class _HttpsHandler(urllib.request.HTTPSHandler):
    def __init__(self, read_timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(context=context)
        self._read_timeout = read_timeout
        self._tls = context

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        def connection(host: str, /, **kwargs: Any) -> http.client.HTTPConnection:
            return _TlsConnection(
                host, read_timeout=self._read_timeout, context=self._tls, **kwargs
            )

        return self.do_open(connection, req)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects (urllib's bounded 10), keeping the token for the same origin only:
    a store redirecting to a presigned object URL elsewhere must not hand it the token."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        if urlsplit(newurl).scheme.lower() not in artifact.REMOTE_SCHEMES:
            # urllib would follow ftp:// too; the store's answer must stay http(s).
            raise urllib.error.HTTPError(
                req.full_url, code, "redirect to a non-http(s) URL", headers, fp
            )
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        token = req.unredirected_hdrs.get("Authorization")
        if new is not None and token and _origin(newurl) == _origin(req.full_url):
            new.add_unredirected_header("Authorization", token)
        return new


def _opener(policy: Policy) -> urllib.request.OpenerDirector:
    context = ssl.create_default_context()  # the system CA bundle
    if policy.ca_file:
        try:
            context.load_verify_locations(cafile=policy.ca_file)  # added to it, not instead
        except (OSError, ssl.SSLError) as exc:
            raise ArtifactError(
                f"cannot load MODELSERVER_ARTIFACT_CA_FILE {policy.ca_file}: {exc}; it must "
                "be a PEM bundle of the store's certificate authorities"
            ) from None
    return urllib.request.build_opener(
        _HttpHandler(policy.read_timeout),
        _HttpsHandler(policy.read_timeout, context),
        _Redirects(),
    )


@dataclass(frozen=True)
class Access:
    """How one source is authenticated, and what a refusal or a 404 from it tells the user.

    The default is the artifact store's (MODELSERVER_ARTIFACT_TOKEN); an MLflow registry
    has its own credentials (MLFLOW_TRACKING_*) and its own advice.
    """

    authorization: str = field(default="", repr=False)
    refused: str = ""
    missing: str = ""
    unreachable: str = ""


# The biggest JSON answer a registry call may give (a model version is a few KiB).
MAX_JSON_BYTES = 1 << 20


class _RetryableError(Exception):
    """One attempt failed in a way another attempt may not (connection, 5xx, truncation)."""


class _StoppedError(ArtifactError):
    pass


@dataclass
class Fetcher:
    """Downloads into `directory`; `cancel` (set when the server stops) ends a download
    at its next chunk or backoff, removing the partial file."""

    directory: Path
    policy: Policy
    cancel: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._opener = _opener(self.policy)

    def download(
        self, url: str, what: str, expected_sha256: str = "", access: Access | None = None
    ) -> Path:
        """`url` into the directory under its own file name, verified; the local path.

        With an expected digest, a file already there that has it is used as is (a
        restarted container in the same pod does not download again).
        """
        _check_url(url, what)
        target = self.directory / local_name(url)
        return self.download_to(url, target, what, expected_sha256, access)

    def download_to(
        self,
        url: str,
        target: Path,
        what: str,
        expected_sha256: str = "",
        access: Access | None = None,
    ) -> Path:
        _check_url(url, what)
        expected = artifact.expected_digest(expected_sha256)
        if expected and target.is_file() and artifact.sha256_of(target) == expected:
            log.info("using the downloaded copy", extra={"url": redact(url), "path": str(target)})
            return target
        self._retrying(
            url, what, access, lambda: self._attempt(url, target, what, expected_sha256, access)
        )
        return target

    def get_json(self, url: str, what: str, access: Access | None = None) -> Any:
        """A small JSON answer (a registry REST call), retried like a download."""
        _check_url(url, what)
        return self._retrying(url, what, access, lambda: self._json_attempt(url, what, access))

    def _retrying(
        self, url: str, what: str, access: Access | None, attempt_once: Callable[[], T]
    ) -> T:
        shown = redact(url)
        attempts = self.policy.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return attempt_once()
            except _RetryableError as exc:
                reason = str(exc)
            if attempt == attempts:
                break
            delay = min(self.policy.backoff * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
            log.warning(
                "download failed, retrying",
                extra={"url": shown, "attempt": attempt, "reason": reason, "retry_in": delay},
            )
            if self.cancel.wait(delay):
                raise _StoppedError(f"stopped while downloading the {what} {shown}")
        raise ArtifactError(
            f"cannot download the {what} {shown}: {reason} (attempt {attempts} of {attempts}); "
            f"{access.unreachable if access and access.unreachable else _advice(reason)}"
        )

    def _open(
        self, url: str, what: str, access: Access | None, accept: str = "*/*"
    ) -> http.client.HTTPResponse:
        """The response to a GET of `url`; a 4xx raises ArtifactError, what may pass
        raises _RetryableError."""
        shown = redact(url)
        # `identity`: the digest is of the file's bytes, not of a compressed transfer.
        request = urllib.request.Request(  # noqa: S310 (_check_url allowed http(s) only)
            url,
            headers={
                "Accept-Encoding": "identity",
                "Accept": accept,
                "User-Agent": "modelrollout-serve",
            },
        )
        header = access.authorization if access else ""
        if not header and access is None and self.policy.token:
            header = f"Bearer {self.policy.token}"
        if header:
            request.add_unredirected_header("Authorization", header)
        try:
            response: http.client.HTTPResponse = self._opener.open(
                request, timeout=self.policy.connect_timeout
            )
            return response
        except urllib.error.HTTPError as error:
            detail = _error_detail(error)
            error.close()
            status = f"HTTP {error.code} {error.reason}"
            if error.code >= 500:
                raise _RetryableError(status) from None
            raise ArtifactError(
                f"cannot download the {what} {shown}: {status}{detail}; "
                f"{_status_advice(error.code, what, access)}"
            ) from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, ssl.SSLError):
                raise ArtifactError(
                    f"cannot download the {what} {shown}: TLS failed "
                    f"({_tls_reason(error.reason)}); if the store's certificate is signed by a "
                    "private authority, set MODELSERVER_ARTIFACT_CA_FILE to its PEM bundle"
                ) from None
            raise _RetryableError(_network_reason(error.reason)) from None
        except (OSError, http.client.HTTPException) as error:
            raise _RetryableError(_network_reason(error)) from None

    def _json_attempt(self, url: str, what: str, access: Access | None) -> Any:
        shown = redact(url)
        with self._open(url, what, access, accept="application/json") as response:
            try:
                body = response.read(MAX_JSON_BYTES + 1)
            except (OSError, http.client.HTTPException) as exc:
                raise _RetryableError(_network_reason(exc)) from None
        if len(body) > MAX_JSON_BYTES:
            raise ArtifactError(f"the {what} answer from {shown} is over {MAX_JSON_BYTES} bytes")
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise ArtifactError(
                f"the {what} answer from {shown} is not JSON: is that address the MLflow "
                "tracking server (MLFLOW_TRACKING_URI)?"
            ) from None

    def _attempt(
        self, url: str, target: Path, what: str, expected_sha256: str, access: Access | None
    ) -> None:
        shown = redact(url)
        started = time.monotonic()
        response = self._open(url, what, access)
        with response:
            if response.status != 200:
                raise ArtifactError(
                    f"cannot download the {what} {shown}: HTTP {response.status} "
                    f"{response.reason}; expected 200 with the file's bytes"
                )
            length = _content_length(response)
            if length is not None and length > self.policy.max_bytes:
                raise ArtifactError(
                    f"cannot download the {what} {shown}: it is {length} bytes, over "
                    f"MODELSERVER_ARTIFACT_MAX_BYTES={self.policy.max_bytes}; raise the limit "
                    "if the artifact really is that large"
                )
            size, actual = self._stream(response, target, what, shown, length, expected_sha256)
        log.info(
            "downloaded",
            extra={
                "url": shown,
                "what": what,
                "bytes": size,
                "sha256": actual,
                "seconds": round(time.monotonic() - started, 3),
            },
        )

    def _stream(
        self,
        response: http.client.HTTPResponse,
        target: Path,
        what: str,
        shown: str,
        length: int | None,
        expected_sha256: str,
    ) -> tuple[int, str]:
        """Body -> `<target>.partial` -> (complete, verified) `target`; the partial never stays."""
        partial = target.with_name(target.name + ".partial")
        digest = hashlib.sha256()
        size = 0
        try:
            try:
                sink = partial.open("wb")
            except OSError as exc:
                raise ArtifactError(
                    f"cannot write {partial}: {exc.strerror}; MODELSERVER_ARTIFACT_DIR must be "
                    "a writable directory (under a read-only root filesystem, mount an emptyDir "
                    "there)"
                ) from None
            with sink:
                while True:
                    if self.cancel.is_set():
                        raise _StoppedError(f"stopped while downloading the {what} {shown}")
                    try:
                        chunk = response.read(CHUNK_BYTES)
                    except (OSError, http.client.HTTPException) as exc:
                        raise _RetryableError(
                            f"{_network_reason(exc)} after {size} bytes"
                        ) from None
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > self.policy.max_bytes:
                        raise ArtifactError(
                            f"cannot download the {what} {shown}: more than "
                            f"{self.policy.max_bytes} bytes arrived, over "
                            "MODELSERVER_ARTIFACT_MAX_BYTES; raise the limit if the artifact "
                            "really is that large"
                        )
                    digest.update(chunk)
                    try:
                        sink.write(chunk)
                    except OSError as exc:
                        raise ArtifactError(
                            f"cannot write {partial}: {exc.strerror} after {size} bytes of the "
                            f"{what} {shown}; give MODELSERVER_ARTIFACT_DIR room for it (an "
                            "emptyDir's sizeLimit at least the artifact's size)"
                        ) from None
            if length is not None and size != length:
                raise _RetryableError(
                    f"the connection closed after {size} of {length} bytes (truncated)"
                )
            actual = digest.hexdigest()
            artifact.check_digest(expected_sha256, actual, shown, holder="the download")
            partial.replace(target)
            return size, actual
        finally:
            partial.unlink(missing_ok=True)


def _check_url(url: str, what: str) -> None:
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError:
        raise ArtifactError(f"the {what} URL {redact(url)} is malformed (host or port)") from None
    if parts.scheme.lower() not in artifact.REMOTE_SCHEMES or not host:
        raise ArtifactError(f"the {what} URL {redact(url)} needs http:// or https:// and a host")
    if "@" in parts.netloc:
        raise ArtifactError(
            f"the {what} URL {redact(url)} carries user:password@, which is not supported; "
            "use MODELSERVER_ARTIFACT_TOKEN_FILE (a bearer token) or a presigned URL"
        )
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise ArtifactError(
            f"the {what} URL {redact(url)} contains spaces or control characters; "
            "percent-encode them"
        )


def _content_length(response: http.client.HTTPResponse) -> int | None:
    raw = response.headers.get("Content-Length")
    try:
        return int(raw) if raw is not None and int(raw) >= 0 else None
    except ValueError:
        return None


def _network_reason(error: object) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, socket.gaierror):
        return f"cannot resolve the host ({error.strerror})"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    if isinstance(error, http.client.IncompleteRead):
        return "the connection closed mid-body (truncated)"
    if isinstance(error, http.client.HTTPException | OSError):
        # Only the exception's type: the text of some (InvalidURL) quotes the URL.
        return f"connection failed ({type(error).__name__})"
    return str(error)


def _tls_reason(error: ssl.SSLError) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate verification failed: {error.verify_message}"
    return error.reason or type(error).__name__


def _advice(reason: str) -> str:
    if reason.startswith("HTTP 5"):
        return "the store keeps failing; check it, the pod restarts and tries again"
    return (
        "check the address, and that the store is reachable from the pod (DNS, NetworkPolicy, "
        "proxy) and answers within MODELSERVER_ARTIFACT_READ_TIMEOUT_SECONDS"
    )


def _error_detail(error: urllib.error.HTTPError) -> str:
    """An MLflow error's own message (e.g. "Registered model alias x not found."), short."""
    try:
        body = json.loads(error.read(4096))
    except (OSError, ValueError, http.client.HTTPException):
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message:
        return ""
    return f" ({' '.join(message.split())[:200]})"


def _status_advice(code: int, what: str, access: Access | None = None) -> str:
    if access is not None and code in (401, 403) and access.refused:
        return f"refused, not retried: {access.refused}"
    if access is not None and code in (400, 404) and access.missing:
        return f"not found, not retried: {access.missing}"
    if code in (401, 403):
        return (
            "the store refused access, not retried: check MODELSERVER_ARTIFACT_TOKEN_FILE, or "
            "that a presigned URL has not expired"
        )
    if code == 404:
        if what == "reference profile":
            return (
                "no such object, not retried: upload the profile `modelrollout train` writes "
                "(<artifact>.profile.json) beside the artifact, or set MODELSERVER_PROFILE_URI "
                "(a presigned artifact URL needs the profile's own presigned URL there)"
            )
        return "no such object, not retried: check MODEL_URI"
    return "the store refused the request, not retried"


class Local(NamedTuple):
    """What start-up loads: local paths, the digest to verify, the registry version if any."""

    model_uri: str
    profile_uri: str
    sha256: str
    registry_version: str = ""


@contextlib.contextmanager
def localized(settings: Settings, cancel: threading.Event | None = None) -> Iterator[Local]:
    """The model and profile on local disk: downloaded first when they are http(s), or
    resolved in the MLflow registry and downloaded when MODEL_URI is `models:/...`.

    Without MODELSERVER_ARTIFACT_DIR the downloads go to a fresh temporary directory,
    removed when the block ends (the model is in memory by then); a configured
    directory keeps them, so a restarted container reuses a verified artifact.
    """
    if registry.is_registry(settings.model_uri):
        with _directory(settings.artifact_dir) as directory:
            fetcher = Fetcher(
                directory, Policy.from_settings(settings), cancel or threading.Event()
            )
            yield _from_registry(settings, fetcher)
        return
    model_remote = artifact.is_remote(settings.model_uri)
    profile_remote = artifact.is_remote(settings.profile_uri)
    if not (model_remote or profile_remote):
        yield Local(settings.model_uri, settings.profile_uri, settings.model_sha256)
        return
    with _directory(settings.artifact_dir) as directory:
        fetcher = Fetcher(directory, Policy.from_settings(settings), cancel or threading.Event())
        model_uri, profile_uri = settings.model_uri, settings.profile_uri
        if model_remote:
            log.info("downloading", extra={"url": redact(model_uri), "dir": str(directory)})
            model_path = fetcher.download(model_uri, "model artifact", settings.model_sha256)
            model_uri = str(model_path)
            # The profile lands beside the artifact under the name the local rule expects.
            source = profile_uri or profile_url(settings.model_uri)
            if not profile_uri or profile_remote:
                beside = model_path.with_name(model_path.name + PROFILE_SUFFIX)
                profile_uri = str(fetcher.download_to(source, beside, "reference profile"))
        else:
            profile_uri = str(fetcher.download(profile_uri, "reference profile"))
        yield Local(model_uri, profile_uri, settings.model_sha256)


def registry_access(settings: Settings) -> Access:
    """MLFLOW_TRACKING_* credentials and the advice a registry's refusals get."""
    return Access(
        authorization=registry.authorization(
            settings.mlflow_tracking_token,
            settings.mlflow_tracking_username,
            settings.mlflow_tracking_password,
        ),
        refused="check MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and "
        "MLFLOW_TRACKING_PASSWORD, and the user's permission on the registered model",
        missing="check the registered model's name and version or alias in MODEL_URI, and "
        "that the version's artifacts (model file, .profile.json) were logged; "
        "`modelrollout register` logs them all",
        unreachable="check MLFLOW_TRACKING_URI, and that the MLflow server is reachable from "
        "the pod (DNS, NetworkPolicy, proxy) and answers within "
        "MODELSERVER_ARTIFACT_READ_TIMEOUT_SECONDS",
    )


def _from_registry(settings: Settings, fetcher: Fetcher) -> Local:
    ref = registry.parse(settings.model_uri)
    tracking = settings.mlflow_tracking_uri.strip()
    if not tracking:
        raise registry.RegistryError(
            f"MODEL_URI {ref} names an MLflow registry model but MLFLOW_TRACKING_URI is not "
            "set: set it to the tracking server's http(s):// address"
        )
    if not artifact.is_remote(tracking):
        raise registry.RegistryError(
            f"MLFLOW_TRACKING_URI {display_uri(tracking)} must be an http:// or https:// "
            "address of an MLflow tracking server"
        )
    access = registry_access(settings)
    resolved = registry.resolve(
        ref,
        tracking,
        settings.model_sha256,
        lambda url, what: fetcher.get_json(url, what, access),
    )
    log.info("resolved registry model %s version %s", resolved.name, resolved.version)
    # The MLflow credentials go to the tracking server only, as mlflow's own client does;
    # an http(s) source elsewhere gets the artifact store's token, if any.
    store = access if _origin(resolved.artifact_url) == _origin(tracking) else None
    model_path = fetcher.download(resolved.artifact_url, "model artifact", resolved.sha256, store)
    if settings.profile_uri and not artifact.is_remote(settings.profile_uri):
        profile_uri = settings.profile_uri
    else:
        source = settings.profile_uri or resolved.profile_url
        beside = model_path.with_name(model_path.name + PROFILE_SUFFIX)
        profile_access = store if not settings.profile_uri else None
        profile_uri = str(
            fetcher.download_to(source, beside, "reference profile", "", profile_access)
        )
    return Local(str(model_path), profile_uri, resolved.sha256, resolved.version)


@contextlib.contextmanager
def _directory(configured: str) -> Iterator[Path]:
    if configured:
        directory = Path(configured)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArtifactError(
                f"cannot create MODELSERVER_ARTIFACT_DIR {directory}: {exc.strerror}"
            ) from None
        yield directory
        return
    try:
        temporary = Path(tempfile.mkdtemp(prefix="modelserver-artifacts-"))
    except OSError as exc:
        raise ArtifactError(
            f"cannot create a download directory in {tempfile.gettempdir()}: {exc.strerror}; "
            "under a read-only root filesystem mount an emptyDir and set "
            "MODELSERVER_ARTIFACT_DIR to it"
        ) from None
    try:
        yield temporary
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
