"""Typed settings of `modelrollout serve`, read from the environment.

The operator injects the model identity with the fixed names of
docs/architecture.md, "Names" (MODEL_NAME, MODEL_VERSION, MODEL_URI, MODEL_SHA256,
MODELROLLOUT_REVISION); everything else is tuning with the prefix
`MODELSERVER_`, so a pod template can set it without flags. Each field says its
unit and why its default is what it is.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PREFIX = "MODELSERVER_"
# Every answer names the model version that gave it: clients (loadgen, the shadow
# champion) count what they received by version from it.
VERSION_HEADER = "X-Model-Version"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


def _doc(text: str, env: str | None = None) -> dict[str, Any]:
    return {"doc": text, "env": env}


@dataclass(frozen=True)
class Settings:
    # Identity (docs/architecture.md, "Names": names injected by the operator).
    model_name: str = field(default="model", metadata=_doc("Logical model name.", "MODEL_NAME"))
    model_version: str = field(
        default="0", metadata=_doc("The release being served.", "MODEL_VERSION")
    )
    model_uri: str = field(
        default="",
        metadata=_doc(
            "Artifact: file:// URI or path, or http(s):// URL downloaded at start-up; required.",
            "MODEL_URI",
        ),
    )
    model_sha256: str = field(
        default="",
        metadata=_doc(
            "Expected hex sha256 of the artifact; empty skips the check (logged).",
            "MODEL_SHA256",
        ),
    )
    revision: str = field(
        default="",
        metadata=_doc("Operator revision hash, shown on model_info.", "MODELROLLOUT_REVISION"),
    )
    # Transport.
    host: str = field(
        default="0.0.0.0",
        metadata=_doc("Listen address; all interfaces because a pod is reached on its IP."),
    )
    port: int = field(default=8080, metadata=_doc("TCP port; 8080 is the chart's containerPort."))
    grpc_port: int = field(
        default=8081,
        metadata=_doc(
            "TCP port of the Open Inference Protocol over gRPC (container port `grpc`); "
            "0 disables it. 8081 beside REST's 8080, as MLServer's defaults."
        ),
    )
    max_body_bytes: int = field(
        default=4 * 1024 * 1024,
        metadata=_doc("Bytes; 4 MiB fits a 1000-row batch of 50 features in JSON with room."),
    )
    max_batch_rows: int = field(
        default=1000,
        metadata=_doc("Rows per request; bounds the time one request holds the event loop."),
    )
    microbatch: bool = field(
        default=True,
        metadata=_doc(
            "Coalesce requests decoded in the same event-loop turn into one predict call; "
            "on because it adds no waiting, only amortizes scikit-learn's per-call cost."
        ),
    )
    # Artifact policy.
    profile_uri: str = field(
        default="",
        metadata=_doc(
            "Reference profile (path, file:// or http(s)://); empty means "
            "`<artifact>.profile.json` beside it (for a URL: its path plus .profile.json, "
            "without the query string)."
        ),
    )
    allow_pickle: bool = field(
        default=False,
        metadata=_doc("Load pickle/joblib artifacts; off because unpickling runs arbitrary code."),
    )
    skops_trusted: tuple[str, ...] = field(
        default=(),
        metadata=_doc(
            "Extra type names a skops artifact may contain (comma-separated), beyond skops' "
            "defaults and LightGBM's estimators (modelserver.artifact.TRUSTED_SKOPS_TYPES)."
        ),
    )
    # Downloading http(s) artifacts (modelserver.fetch).
    artifact_dir: str = field(
        default="",
        metadata=_doc(
            "Directory downloads are kept in; empty: a fresh temporary directory, removed once "
            "the model is loaded. Under a read-only root filesystem mount an emptyDir here."
        ),
    )
    artifact_max_bytes: int = field(
        default=2 * 1024**3,
        metadata=_doc("Bytes; a larger download is refused. 2 GiB is far above a typical model."),
    )
    artifact_connect_timeout_seconds: float = field(
        default=10.0, metadata=_doc("Seconds to connect (and TLS handshake) per attempt.")
    )
    artifact_read_timeout_seconds: float = field(
        default=60.0,
        metadata=_doc("Seconds without a byte from the store before an attempt fails."),
    )
    artifact_retries: int = field(
        default=3,
        metadata=_doc(
            "Retries after a connection failure, truncated body or 5xx (never after a 4xx)."
        ),
    )
    artifact_retry_backoff_seconds: float = field(
        default=1.0,
        metadata=_doc("Seconds before the first retry, doubling for each next one (up to 30)."),
    )
    artifact_token: str = field(
        default="",
        repr=False,
        metadata=_doc("Bearer token for a private store (never logged); prefer the _FILE form."),
    )
    artifact_token_file: str = field(
        default="",
        metadata=_doc("File holding that bearer token, e.g. a mounted Secret."),
    )
    artifact_ca_file: str = field(
        default="",
        metadata=_doc("PEM bundle trusted for HTTPS besides the system's CA bundle."),
    )
    # An MLflow registry: MODEL_URI=models:/NAME/VERSION or @ALIAS (modelserver.registry).
    mlflow_tracking_uri: str = field(
        default="",
        metadata=_doc(
            "MLflow tracking server (http(s)://) resolving a models:/ MODEL_URI; required then.",
            "MLFLOW_TRACKING_URI",
        ),
    )
    mlflow_tracking_token: str = field(
        default="",
        repr=False,
        metadata=_doc(
            "Bearer token for the MLflow server (never logged).", "MLFLOW_TRACKING_TOKEN"
        ),
    )
    mlflow_tracking_username: str = field(
        default="",
        metadata=_doc("Basic-auth user for the MLflow server.", "MLFLOW_TRACKING_USERNAME"),
    )
    mlflow_tracking_password: str = field(
        default="",
        repr=False,
        metadata=_doc(
            "Basic-auth password for the MLflow server (never logged).", "MLFLOW_TRACKING_PASSWORD"
        ),
    )
    termination_log: str = field(
        default="/dev/termination-log",
        metadata=_doc(
            "Where a start-up refusal is written for Kubernetes' lastState.terminated.message; "
            "only if the file exists (the kubelet creates it), empty disables."
        ),
    )
    shutdown_drain_seconds: float = field(
        default=5.0,
        metadata=_doc(
            "After SIGTERM: seconds of answering while readiness reports 503, so the "
            "endpoints controller and kube-proxy stop routing here before the server "
            "stops (a pod's termination grace period is 30 s by default); 0 stops at once."
        ),
    )
    # Drift monitoring.
    drift_enabled: bool = field(default=True, metadata=_doc("Record inputs for drift metrics."))
    drift_window: int = field(
        default=1000,
        metadata=_doc(
            "Rows in the sliding window; 1000 puts a feature's PSI noise near 0.01 with "
            "10 bins, far under the usual 0.1/0.25 thresholds."
        ),
    )
    drift_min_samples: int = field(
        default=300,
        metadata=_doc(
            "Rows before drift gauges appear; below ~300 sampling noise alone can reach 0.1."
        ),
    )
    drift_interval_seconds: float = field(
        default=5.0,
        metadata=_doc("Seconds between evaluations; well under a typical 15-30 s scrape interval."),
    )
    # Labelled feedback.
    feedback_cache_size: int = field(
        default=100_000,
        metadata=_doc(
            "Requests remembered for feedback; ~30 MB for one-row requests, minutes of traffic."
        ),
    )
    feedback_window: int = field(
        default=500, metadata=_doc("Labelled rows in the live accuracy window.")
    )
    feedback_min_samples: int = field(
        default=50,
        metadata=_doc("Labelled rows before the accuracy gauge appears; fewer is too noisy."),
    )
    # The inference-records store (modelserver.records), shared by every replica.
    records_dsn: str = field(
        default="",
        metadata=_doc(
            "PostgreSQL connection string of the inference-records store (give it from a "
            "Secret); empty keeps feedback in this process's memory only."
        ),
    )
    records_sample_rate: float = field(
        default=1.0,
        metadata=_doc("Fraction 0..1 of requests recorded, chosen by a hash of the request id."),
    )
    records_retention_hours: float = field(
        default=720.0,
        metadata=_doc("Rows older than this are deleted (30 days); 0 keeps them forever."),
    )
    records_queue_rows: int = field(
        default=50_000,
        metadata=_doc(
            "Rows waiting to be written at most; past it requests are not recorded (counted "
            "in modelserver_records_dropped_total), so a slow store never slows serving."
        ),
    )
    records_flush_seconds: float = field(
        default=1.0,
        metadata=_doc("Seconds between batched writes, and between live-window refreshes."),
    )
    # Shadow traffic (modelserver.shadow): the champion mirrors a sample to the challenger.
    shadow_url: str = field(
        default="",
        metadata=_doc(
            "Base URL (http:// or https://) of the challenger that copies of sampled "
            "requests go to when the shadow configuration names none (the operator's "
            "names the canary Service's ClusterIP). Neither: never mirror."
        ),
    )
    shadow_config_file: str = field(
        default="/etc/modelrollout/shadow/shadow.json",
        metadata=_doc(
            'JSON {"percent": P, "champion": REVISION, "challenger": REVISION, "url": URL} '
            "(a projected ConfigMap, re-read when it changes); this server mirrors P% only "
            "when its MODELROLLOUT_REVISION is the champion. Missing or malformed: no mirroring."
        ),
    )
    shadow_max_in_flight: int = field(
        default=64,
        metadata=_doc(
            "Copies awaiting the challenger's answer at most; beyond, a copy is dropped "
            "(counted), so a slow challenger costs the champion bounded memory and sockets "
            "(each copy holds its request body: 64 one-row wine requests are about 64 KiB)."
        ),
    )
    shadow_timeout_seconds: float = field(
        default=2.0,
        metadata=_doc("Seconds a copy may take in all; later, it counts as timed out."),
    )
    shadow_window: int = field(
        default=1000,
        metadata=_doc(
            "Compared rows in the agreement window; at 1000 rows an agreement of 0.97 is "
            "known to about +-0.005."
        ),
    )
    shadow_min_samples: int = field(
        default=300,
        metadata=_doc(
            "Compared rows before the agreement, prediction-PSI and difference gauges "
            "appear; as for drift, fewer leave PSI noise near 0.1."
        ),
    )
    # Fault injection, for rollout tests that need a misbehaving revision; off by default.
    fault_error_rate: float = field(
        default=0.0,
        metadata=_doc("Fraction 0..1 of inference requests answered 500 on purpose."),
    )
    fault_latency_seconds: float = field(
        default=0.0, metadata=_doc("Seconds of delay added to every inference request.")
    )
    log_level: str = field(default="INFO", metadata=_doc("Python logging level name."))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from the environment; `overrides` (from flags) win when not None."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = f.metadata.get("env") or PREFIX + f.name.upper()
            if overrides.get(f.name) is not None:
                values[f.name] = overrides[f.name]
            elif name in env:
                values[f.name] = _convert(name, env[name], f.default)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if not self.model_uri:
            raise SettingsError("MODEL_URI (or --model-uri) is required: where is the model?")
        if not 0.0 <= self.fault_error_rate <= 1.0:
            raise SettingsError("MODELSERVER_FAULT_ERROR_RATE must be between 0 and 1")
        for name in ("port", "max_body_bytes", "max_batch_rows", "drift_window"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{PREFIX}{name.upper()} must be positive")
        if not 0 <= self.grpc_port <= 65535:
            raise SettingsError(f"{PREFIX}GRPC_PORT must be 0 (off) or a port up to 65535")
        if self.grpc_port == self.port:
            raise SettingsError(
                f"{PREFIX}GRPC_PORT and {PREFIX}PORT are both {self.port}; gRPC needs its own port"
            )
        if self.drift_min_samples > self.drift_window:
            raise SettingsError(
                f"{PREFIX}DRIFT_MIN_SAMPLES ({self.drift_min_samples}) exceeds "
                f"{PREFIX}DRIFT_WINDOW ({self.drift_window}): drift would never be reported"
            )
        if self.drift_interval_seconds <= 0:
            raise SettingsError(f"{PREFIX}DRIFT_INTERVAL_SECONDS must be positive")
        if self.shutdown_drain_seconds < 0:
            raise SettingsError(f"{PREFIX}SHUTDOWN_DRAIN_SECONDS must be 0 or more")
        for name in (
            "artifact_max_bytes",
            "artifact_connect_timeout_seconds",
            "artifact_read_timeout_seconds",
        ):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{PREFIX}{name.upper()} must be positive")
        for name in ("artifact_retries", "artifact_retry_backoff_seconds"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{PREFIX}{name.upper()} must not be negative")
        if not 0.0 <= self.records_sample_rate <= 1.0:
            raise SettingsError(f"{PREFIX}RECORDS_SAMPLE_RATE must be between 0 and 1")
        if self.records_retention_hours < 0:
            raise SettingsError(f"{PREFIX}RECORDS_RETENTION_HOURS must be 0 (forever) or more")
        for name in ("records_queue_rows", "records_flush_seconds"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{PREFIX}{name.upper()} must be positive")
        if self.shadow_url and not self.shadow_url.startswith(("http://", "https://")):
            raise SettingsError(f"{PREFIX}SHADOW_URL must be an http:// or https:// URL")
        for name in ("shadow_max_in_flight", "shadow_timeout_seconds", "shadow_window"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{PREFIX}{name.upper()} must be positive")
        if self.shadow_min_samples > self.shadow_window:
            raise SettingsError(
                f"{PREFIX}SHADOW_MIN_SAMPLES ({self.shadow_min_samples}) exceeds "
                f"{PREFIX}SHADOW_WINDOW ({self.shadow_window}): agreement would never be reported"
            )
        if self.artifact_token and self.artifact_token_file:
            raise SettingsError(
                f"set {PREFIX}ARTIFACT_TOKEN or {PREFIX}ARTIFACT_TOKEN_FILE, not both"
            )

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """(variable, default, doc) for every setting, for `serve --help` and the README."""
        rows = []
        for f in dataclasses.fields(cls):
            name = f.metadata.get("env") or PREFIX + f.name.upper()
            rows.append((name, repr(f.default), f.metadata["doc"]))
        return rows


def _convert(name: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a valid {type(default).__name__}") from None
    return raw
