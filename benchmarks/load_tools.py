"""Load generators neither server wrote, for modelserver_bench.py: `wrk` (REST) and `ghz` (gRPC).

`modelrollout loadgen` shares its request encoding and HTTP stack with this
project, which could flatter this server; wrk (C, Debian's package, installed by
scripts/install-debian-deps.sh) and ghz (Go, built from the Go module proxy into
~/.cache/modelrollout keyed by its version, as tools/cluster/build.sh caches its
binaries) replay one fixed request body as fast as their connections allow, and
measure the same way for both servers. Every run is bounded by its duration and
aimed at 127.0.0.1 only.

Request bodies are written here too: one row or 100 rows of the wine data, as this
server's one-input-per-feature V2 request (JSON, or the binary tensor extension),
as MLServer's one [rows, 13] tensor, and as the matching gRPC requests (ghz's
JSON form of ModelInferRequest).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

GHZ_VERSION = "v0.120.0"
GHZ_MODULE = "github.com/bojand/ghz/cmd/ghz"
PROTO = (
    Path(__file__).resolve().parent.parent
    / "operator" / "modelserver" / "grpc" / "grpc_predict_v2.proto"
)  # fmt: skip
# wrk's Lua: POST one body read from a file, print the figures as one JSON line.
WRK_SCRIPT = """
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE")
local header_length = os.getenv("BENCH_HEADER_LENGTH") or ""
if header_length ~= "" then
  wrk.headers["Inference-Header-Content-Length"] = header_length
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"non2xx":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Body:
    """One request, ready for a load tool."""

    path: Path
    content_type: str = "application/json"
    header_length: int | None = None  # the binary extension's JSON header length


@dataclass(frozen=True)
class Figures:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    failed: int


def cache_root() -> Path:
    """tools/cluster/build.sh's cache: MODELROLLOUT_CACHE, else XDG_CACHE_HOME/modelrollout."""
    explicit = os.environ.get("MODELROLLOUT_CACHE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "modelrollout"


def ensure_ghz() -> Path:
    """ghz at GHZ_VERSION, built once per machine into the cache."""
    out = cache_root() / f"ghz-{GHZ_VERSION}"
    binary = out / "ghz"
    if not binary.exists():
        tmp = out.with_name(f"{out.name}.tmp.{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        env = {**os.environ, "GOBIN": str(tmp), "GOTOOLCHAIN": "local"}
        subprocess.run(["go", "install", f"{GHZ_MODULE}@{GHZ_VERSION}"], env=env, check=True)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return binary


def ensure_wrk() -> Path:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: run `make deps` (Debian package wrk)")
    return Path(found)


# -- request bodies ----------------------------------------------------------------------


def v2_json(names: list[str], matrix: np.ndarray[Any, Any], out: Path) -> Body:
    inputs = [
        {"name": n, "datatype": "FP64", "shape": [len(matrix)], "data": matrix[:, i].tolist()}
        for i, n in enumerate(names)
    ]
    out.write_text(json.dumps({"inputs": inputs}))
    return Body(out)


def v2_binary(names: list[str], matrix: np.ndarray[Any, Any], out: Path) -> Body:
    """The binary tensor extension, outputs in binary too (tritonclient's default)."""
    columns = [np.ascontiguousarray(matrix[:, i], dtype="<f8").tobytes() for i in range(len(names))]
    inputs = [
        {
            "name": n,
            "datatype": "FP64",
            "shape": [len(matrix)],
            "parameters": {"binary_data_size": len(columns[i])},
        }
        for i, n in enumerate(names)
    ]
    header = json.dumps({"inputs": inputs, "parameters": {"binary_data_output": True}}).encode()
    out.write_bytes(header + b"".join(columns))
    return Body(out, "application/octet-stream", len(header))


def tensor_json(matrix: np.ndarray[Any, Any], out: Path) -> Body:
    """MLServer's scikit-learn runtime's native input: one [rows, features] tensor."""
    tensor = {
        "name": "input-0",
        "datatype": "FP64",
        "shape": list(matrix.shape),
        "data": matrix.reshape(-1).tolist(),
    }
    out.write_text(json.dumps({"inputs": [tensor]}))
    return Body(out)


def grpc_per_feature(names: list[str], matrix: np.ndarray[Any, Any], out: Path) -> Body:
    inputs = [
        {
            "name": n,
            "datatype": "FP64",
            "shape": [len(matrix)],
            "contents": {"fp64_contents": matrix[:, i].tolist()},
        }
        for i, n in enumerate(names)
    ]
    out.write_text(json.dumps({"model_name": "wine", "inputs": inputs}))
    return Body(out)


def grpc_tensor(matrix: np.ndarray[Any, Any], out: Path) -> Body:
    tensor = {
        "name": "input-0",
        "datatype": "FP64",
        "shape": list(matrix.shape),
        "contents": {"fp64_contents": matrix.reshape(-1).tolist()},
    }
    out.write_text(json.dumps({"model_name": "wine", "inputs": [tensor]}))
    return Body(out)


# -- the tools ---------------------------------------------------------------------------


def run_wrk(url: str, body: Body, seconds: float, connections: int, work: Path) -> Figures:
    script = work / "post.lua"
    script.write_text(WRK_SCRIPT)
    env = {
        **os.environ,
        "BENCH_BODY": str(body.path),
        "BENCH_CONTENT_TYPE": body.content_type,
        "BENCH_HEADER_LENGTH": "" if body.header_length is None else str(body.header_length),
    }
    command = [
        str(ensure_wrk()), "--threads", "2", "--connections", str(connections),
        "--duration", f"{seconds:.0f}s", "--timeout", "5s", "--script", str(script), url,
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("BENCH "))
    result = json.loads(line.removeprefix("BENCH "))
    return Figures(
        result["requests"] / (result["duration_us"] / 1e6),
        result["p50_us"] / 1000,
        result["p99_us"] / 1000,
        result["non2xx"] + result["socket_errors"],
    )


def run_ghz(address: str, body: Body, seconds: float, concurrency: int) -> Figures:
    command = [
        str(ensure_ghz()), "--insecure", "--proto", str(PROTO),
        "--call", "inference.GRPCInferenceService.ModelInfer",
        "--data-file", str(body.path), "--concurrency", str(concurrency),
        "--duration", f"{seconds:.0f}s", "--timeout", "5s", "--format", "json", address,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    latencies = {d["percentage"]: d["latency"] for d in report.get("latencyDistribution") or []}
    codes = report.get("statusCodeDistribution") or {}
    # ghz closes its connection when the duration is up: the calls then in flight
    # (at most `concurrency`) end Unavailable without the server having failed them.
    cut = sum(
        n for error, n in (report.get("errorDistribution") or {}).items()
        if "use of closed network connection" in error
    )  # fmt: skip
    return Figures(
        float(report["rps"]),
        latencies.get(50, 0) / 1e6,
        latencies.get(99, 0) / 1e6,
        sum(n for code, n in codes.items() if code != "OK") - cut,
    )
