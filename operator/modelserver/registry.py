"""Resolving `MODEL_URI=models:/NAME/VERSION` or `models:/NAME@ALIAS` in an MLflow registry.

The operator pins a registry model to a version and hands the server
`models:/NAME/VERSION` with the digest the version records; the server asks the
MLflow REST API (no mlflow library: three GETs need none, and the image stays
small) which files that version's `source` directory holds, and downloads them
through the same verified downloader as any http(s) artifact (modelserver.fetch).

Why the digest is required: a registry version is mutable storage behind a
name. The version's tag `modelrollout.io/sha256` (written by `modelrollout
register`) or MODEL_SHA256 names the exact bytes; without either the server
refuses rather than serve whatever the directory holds now. When both are set
they must agree.

Only `mlflow-artifacts:/` (a tracking server run with --serve-artifacts),
`runs:/` (resolved through the run to one of those) and plain http(s) sources
are downloadable over HTTP; s3://, gs:// or file: sources would need the cloud
SDKs in the server and are refused with what to change.

This module does no I/O itself: `resolve` takes the JSON getter fetch.py builds
on its downloader, so retries, timeouts, TLS and redaction are decided once.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from modelserver import artifact
from modelserver.artifact import ArtifactError

SCHEME = "models:"
SHA256_TAG = "modelrollout.io/sha256"
ARTIFACT_TAG = "modelrollout.io/artifact"
DEFAULT_ARTIFACT = "model.skops"
_FORMS = "models:/NAME/VERSION (a version number) or models:/NAME@ALIAS"
_VERSION = re.compile(r"[0-9]+")
_HEX64 = re.compile(r"[0-9a-f]{64}")
SERVE_ARTIFACTS = (
    "the reference server downloads registry artifacts over HTTP: run the MLflow server "
    "with --serve-artifacts (sources mlflow-artifacts:/...) or register an http(s) source"
)

# (url, what) -> the decoded JSON answer; raises ArtifactError with the reason.
JsonGetter = Callable[[str, str], Any]


class RegistryError(ArtifactError):
    """The registry model cannot be resolved; the message says why and what to check."""


@dataclass(frozen=True)
class ModelRef:
    """A parsed `models:/` URI: exactly one of version and alias is set."""

    name: str
    version: str = ""
    alias: str = ""

    def __str__(self) -> str:
        return (
            f"models:/{self.name}@{self.alias}"
            if self.alias
            else f"models:/{self.name}/{self.version}"
        )


@dataclass(frozen=True)
class Resolved:
    """What the downloader needs for a registry version: URLs, the digest, the auth header."""

    name: str
    version: str
    artifact_url: str
    profile_url: str
    sha256: str
    authorization: str = field(default="", repr=False)


def is_registry(uri: str) -> bool:
    return uri.lower().startswith(SCHEME)


def parse(uri: str) -> ModelRef:
    """`models:/NAME/VERSION` or `models:/NAME@ALIAS`; anything else is refused by name."""
    rest = uri[len(SCHEME) :]
    if not rest.startswith("/") or rest.startswith("//"):
        raise RegistryError(f"MODEL_URI {uri!r} is not a registry URI: use {_FORMS}")
    rest = rest[1:]
    if "@" in rest:
        name, _, alias = rest.partition("@")
        if name and alias and "/" not in name and "/" not in alias and "@" not in alias:
            return ModelRef(name=name, alias=alias)
        raise RegistryError(f"MODEL_URI {uri!r} is malformed: use {_FORMS}")
    name, _, version = rest.rpartition("/")
    if not name or not version or "/" in name:
        raise RegistryError(f"MODEL_URI {uri!r} is malformed: use {_FORMS}")
    if not _VERSION.fullmatch(version):
        raise RegistryError(
            f"MODEL_URI {uri!r} names version {version!r}: use a version number or @alias "
            f"({_FORMS}); 'latest' and stage names are not supported, because what they "
            "point to changes without a rollout"
        )
    return ModelRef(name=name, version=version)


def authorization(token: str, username: str, password: str) -> str:
    """The Authorization header value from MLFLOW_TRACKING_TOKEN or _USERNAME/_PASSWORD."""
    if token:
        if not all(0x21 <= ord(c) <= 0x7E for c in token):
            raise RegistryError(
                "MLFLOW_TRACKING_TOKEN contains spaces, control or non-ASCII characters; "
                "a bearer token cannot"
            )
        return f"Bearer {token}"
    if username or password:
        raw = f"{username}:{password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")
    return ""


def _api(tracking: str, path: str, **query: str) -> str:
    return f"{tracking.rstrip('/')}/api/2.0/{path}?{urlencode(query)}"


def artifact_base(tracking: str, uri: str, get_json: JsonGetter) -> str:
    """The http(s) URL of the directory an artifact URI names (no trailing slash)."""
    lowered = uri.lower()
    if lowered.startswith("mlflow-artifacts:"):
        path = uri.split(":", 1)[1]
        if path.startswith("//"):  # mlflow-artifacts://host:port/path: the path part
            path = "/" + path[2:].partition("/")[2]
        path = path.strip("/")
        return f"{tracking.rstrip('/')}/api/2.0/mlflow-artifacts/artifacts/{quote(path)}"
    if lowered.startswith("runs:/"):
        run_id, _, sub = uri[len("runs:/") :].partition("/")
        if not run_id:
            raise RegistryError(f"source {uri!r} names no run")
        answer = get_json(_api(tracking, "mlflow/runs/get", run_id=run_id), "run")
        base = _field(answer, "run", "info", "artifact_uri")
        if not base or base.lower().startswith("runs:"):
            raise RegistryError(f"run {run_id} has no artifact_uri the server can use")
        root = artifact_base(tracking, base, get_json)
        return f"{root}/{quote(sub.strip('/'))}" if sub.strip("/") else root
    if artifact.is_remote(uri):
        return uri.rstrip("/")
    scheme = uri.partition(":")[0] or "a local path"
    raise RegistryError(f"the version's source is {scheme}: ...: {SERVE_ARTIFACTS}")


def _field(answer: Any, *keys: str) -> str:
    for key in keys:
        answer = answer.get(key) if isinstance(answer, dict) else None
    return answer if isinstance(answer, str) else ""


def resolve(
    ref: ModelRef,
    tracking: str,
    expected_sha256: str,
    get_json: JsonGetter,
    auth: str = "",
) -> Resolved:
    """Look the version up, check it is READY and pinned to a digest, and map its source."""
    if ref.alias:
        url = _api(tracking, "mlflow/registered-models/alias", name=ref.name, alias=ref.alias)
        what = f"registry alias {ref}"
    else:
        url = _api(tracking, "mlflow/model-versions/get", name=ref.name, version=ref.version)
        what = f"registry version {ref}"
    answer = get_json(url, what)
    mv = answer.get("model_version") if isinstance(answer, dict) else None
    if not isinstance(mv, dict):
        raise RegistryError(f"the registry's answer for {ref} has no model_version")
    version = str(mv.get("version", ""))
    status = str(mv.get("status", "READY"))
    if status != "READY":
        raise RegistryError(
            f"{ref} (version {version}) is {status}, not READY: wait for its registration "
            "to finish, or fix it in the registry"
        )
    tags = {
        str(t.get("key")): str(t.get("value", ""))
        for t in mv.get("tags") or []
        if isinstance(t, dict)
    }
    tagged = artifact.expected_digest(tags.get(SHA256_TAG, ""))
    given = artifact.expected_digest(expected_sha256)
    if tagged and not _HEX64.fullmatch(tagged):
        raise RegistryError(f"{ref} (version {version}) has a malformed {SHA256_TAG} tag")
    if not tagged and not given:
        raise RegistryError(
            f"{ref} (version {version}) records no digest (tag {SHA256_TAG}): refusing to serve "
            "an unverified registry artifact; register it with `modelrollout register` or set "
            "MODEL_SHA256"
        )
    if tagged and given and tagged != given:
        raise RegistryError(
            f"{ref} (version {version}) records sha256 {tagged} but MODEL_SHA256 is {given}: "
            "they name different artifacts; refusing to serve either"
        )
    name = tags.get(ARTIFACT_TAG) or DEFAULT_ARTIFACT
    if "/" in name or name.strip(".") == "":
        raise RegistryError(f"{ref} (version {version}) has a malformed {ARTIFACT_TAG} tag")
    source = str(mv.get("source", ""))
    if not source:
        raise RegistryError(f"{ref} (version {version}) has no source")
    base = artifact_base(tracking, source, get_json)
    return Resolved(
        name=ref.name,
        version=version,
        artifact_url=f"{base}/{quote(name)}",
        profile_url=f"{base}/{quote(name)}.profile.json",
        sha256=tagged or given,
        authorization=auth,
    )
