"""A small client of MLflow's model-registry REST API (2.0), on requests.

The operator needs four calls (read a version, read an alias, set an alias,
and the tags that come with them), `prune-registry` two more (list a model's
versions with their aliases, delete one); the MLflow client library would bring
the whole tracking stack into the operator image for them. Calls block and are
bounded by a timeout; the reconcile that makes them is the retry. Credentials
come from MLflow's own variables (MLFLOW_TRACKING_TOKEN, or
MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD) and go only into the
request's Authorization header, never into messages.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import requests

from modelrollout.api import RegistryVersion
from modelrollout.rollout import StoredVersion

# The tags `modelrollout register` writes on every version (README: "Model registry").
SHA256_TAG = "modelrollout.io/sha256"
DATASET_SHA256_TAG = "modelrollout.io/dataset-sha256"
DATASET_ROWS_TAG = "modelrollout.io/dataset-rows"
TASK_TAG = "modelrollout.io/task"
METRIC_TAG_PREFIX = "modelrollout.io/metric."
# A registry answers in milliseconds; a reconcile waits for it, so a hung one
# must cost little.
TIMEOUT_SECONDS = 10.0
_API = "/api/2.0/mlflow"
# A page of model-versions/search (MLflow's own default and ceiling are larger).
PAGE_SIZE = 1000
# MLflow says "no such model/alias" with one of these (the HTTP status varies by version).
_NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})


class RegistryError(RuntimeError):
    """The registry could not say which version to roll out."""


class RegistryUnavailableError(RegistryError):
    """Not reachable, not answering, refusing our credentials, or answering garbage."""


class VersionRejectedError(RegistryError):
    """The registry answered: the model, version or alias is missing, or the version
    cannot be rolled out as it is (not READY, no recorded digest)."""


class MlflowRegistry:
    def __init__(
        self,
        uri: str,
        *,
        env: Mapping[str, str] | None = None,
        timeout_seconds: float = TIMEOUT_SECONDS,
        session: requests.Session | None = None,
    ) -> None:
        env = os.environ if env is None else env
        self.uri = uri.rstrip("/")
        self._timeout = timeout_seconds
        self._session = session or requests.Session()
        token = env.get("MLFLOW_TRACKING_TOKEN", "")
        user, password = (
            env.get("MLFLOW_TRACKING_USERNAME", ""),
            env.get("MLFLOW_TRACKING_PASSWORD", ""),
        )
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"
        elif user:
            self._session.auth = (user, password)

    def version(self, name: str, version: str) -> RegistryVersion:
        answer = self._call("GET", "/model-versions/get", {"name": name, "version": version})
        return _record(answer, f"model {name!r} version {version}")

    def alias(self, name: str, alias: str) -> RegistryVersion:
        answer = self._call("GET", "/registered-models/alias", {"name": name, "alias": alias})
        return _record(answer, f"model {name!r} alias {alias!r}")

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._call(
            "POST", "/registered-models/alias", {"name": name, "alias": alias, "version": version}
        )

    def versions(self, name: str, *, page_size: int = PAGE_SIZE) -> tuple[StoredVersion, ...]:
        """Every version of registered model `name`, with the aliases pointing to it.

        VersionRejectedError when there is no such model; RegistryUnavailableError
        when an answer is not what MLflow answers (a prune must not decide on half
        a list)."""
        if "'" in name:
            raise VersionRejectedError(
                f"a registered model name with a quote cannot be searched: {name!r}"
            )
        model = self._call("GET", "/registered-models/get", {"name": name}).get("registered_model")
        if not isinstance(model, dict):
            raise RegistryUnavailableError(
                f"MLflow registry at {self.uri} answered registered-models/get for {name!r} "
                "without registered_model"
            )
        aliases: dict[str, list[str]] = {}
        for entry in model.get("aliases") or []:
            if isinstance(entry, dict) and entry.get("alias") and entry.get("version"):
                aliases.setdefault(str(entry["version"]), []).append(str(entry["alias"]))
        found: dict[str, StoredVersion] = {}
        token = ""
        while True:
            params = {"filter": f"name='{name}'", "max_results": str(page_size)}
            if token:
                params["page_token"] = token
            page = self._call("GET", "/model-versions/search", params)
            for raw in page.get("model_versions") or []:
                stored = _stored(raw, name, aliases, self.uri)
                found[stored.version] = stored
            token = str(page.get("next_page_token") or "")
            if not token:
                break
        missing = sorted(set(aliases) - set(found))
        if missing:
            raise RegistryUnavailableError(
                f"MLflow registry at {self.uri}: aliases of {name!r} point to versions "
                f"{', '.join(missing)} that the search did not list; nothing decided"
            )
        return tuple(found.values())

    def delete_version(self, name: str, version: str) -> None:
        """Delete one model version. MLflow keeps the run that made it, and the
        run's artifacts (the model files and the dataset snapshot)."""
        self._call("DELETE", "/model-versions/delete", {"name": name, "version": version})

    def _call(self, method: str, path: str, params: dict[str, str]) -> dict[str, Any]:
        url = f"{self.uri}{_API}{path}"
        try:
            response = self._session.request(
                method,
                url,
                params=params if method == "GET" else None,
                json=params if method != "GET" else None,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise RegistryUnavailableError(
                f"MLflow registry at {self.uri} did not answer within {self._timeout:.0f} s"
            ) from None
        except requests.RequestException as error:
            raise RegistryUnavailableError(
                f"MLflow registry at {self.uri} is unreachable: {_short(error)}"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 200 and isinstance(body, dict):
            return body
        detail = body.get("message", "") if isinstance(body, dict) else ""
        code = body.get("error_code", "") if isinstance(body, dict) else ""
        where = f"MLflow registry at {self.uri}"
        if response.status_code in (401, 403):
            raise RegistryUnavailableError(
                f"{where} refused the operator's credentials (HTTP {response.status_code}); "
                "check MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD"
            )
        if response.status_code == 404 or code in {
            "RESOURCE_DOES_NOT_EXIST",
            "INVALID_PARAMETER_VALUE",
        }:
            raise VersionRejectedError(f"{where}: {detail or code or 'not found'}"[:512])
        if response.status_code == 200:
            raise RegistryUnavailableError(
                f"{where} answered {path} with something other than JSON"
            )
        raise RegistryUnavailableError(
            f"{where} answered HTTP {response.status_code}"
            + (f": {detail}"[:400] if detail else "")
        )


def _record(answer: Mapping[str, Any], what: str) -> RegistryVersion:
    found = answer.get("model_version")
    if not isinstance(found, dict):
        raise RegistryUnavailableError(f"the registry's answer for {what} has no model_version")
    status = found.get("status", "READY")
    if status != "READY":
        raise VersionRejectedError(f"{what} is {status}, not READY: it cannot be served yet")
    raw_tags = found.get("tags") or []
    tags = {
        str(t.get("key")): str(t.get("value", ""))
        for t in raw_tags
        if isinstance(t, dict) and t.get("key")
    }
    digest = tags.get(SHA256_TAG, "").lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise VersionRejectedError(
            f"{what} (version {found.get('version')}) has no valid {SHA256_TAG} tag: the "
            "servers could not verify its artifact; register it with `modelrollout register` "
            "or tag it with the artifact's sha256"
        )
    return RegistryVersion(
        name=str(found.get("name", "")),
        version=str(found.get("version", "")),
        sha256=digest,
        dataset_sha256=tags.get(DATASET_SHA256_TAG) or None,
        dataset_rows=_integer(tags.get(DATASET_ROWS_TAG)),
        task=tags.get(TASK_TAG) or None,
        metrics=_metrics(tags),
    )


def _stored(raw: object, name: str, aliases: Mapping[str, list[str]], uri: str) -> StoredVersion:
    if not isinstance(raw, dict) or raw.get("name") != name:
        raise RegistryUnavailableError(
            f"MLflow registry at {uri} listed something other than a version of {name!r}"
        )
    version = str(raw.get("version", ""))
    try:
        created_ms = int(raw["creation_timestamp"])
    except (KeyError, TypeError, ValueError):
        raise RegistryUnavailableError(
            f"MLflow registry at {uri}: version {version} of {name!r} has no creation time"
        ) from None
    listed = raw.get("aliases") or []
    return StoredVersion(
        version=version,
        created_at=datetime.fromtimestamp(created_ms / 1000, tz=UTC),
        # Newer servers list a version's aliases with it too; either says so.
        aliases=tuple(dict.fromkeys([*aliases.get(version, ()), *map(str, listed)])),
        status=str(raw.get("status") or "READY"),
    )


def _integer(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def _metrics(tags: Mapping[str, str]) -> dict[str, float]:
    metrics = {}
    for key, raw in tags.items():
        if not key.startswith(METRIC_TAG_PREFIX):
            continue
        try:
            value = float(raw)
        except ValueError:
            continue
        if math.isfinite(value):
            metrics[key.removeprefix(METRIC_TAG_PREFIX)] = value
    return metrics


def _short(error: BaseException) -> str:
    text = str(error)
    # requests nests the real cause (connection refused, name not known) deep in
    # its message; the tail is what a person needs.
    return text.rsplit(":", 1)[-1].strip(" ')\"") or type(error).__name__
