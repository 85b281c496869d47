"""Throughput and latency of the reference model server, against MLServer and with drift off.

One run serves the same trained pipeline (wine, standardized logistic
regression) from each server in turn, on loopback, and drives each with the
same load tool (`modelrollout loadgen`, as fast as the concurrency allows).
Servers run one at a time so they do not compete for the CPU, and the rounds
interleave them so a slow spell on the machine hits every configuration.

MLServer pins library versions that conflict with this project's, so it lives
in its own virtualenv (.venv-bench, created here on first use, gitignored).
It gets the pipeline as joblib, its scikit-learn runtime's native format, and
one [rows, features] tensor per request, its native input shape; this server
gets the skops file and one named input per feature.

    .venv/bin/python benchmarks/modelserver_bench.py [--duration 15] [--rounds 2]

It also drives both servers with load tools neither wrote (benchmarks/load_tools.py):
wrk for REST and ghz for gRPC, one row and 100 rows per request, and this server's
REST with the binary tensor extension beside its JSON.

Figures are printed as a Markdown table; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import load_tools
import numpy as np

from modelrollout.devenv.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BENCH_VENV = ROOT / ".venv-bench"
MLSERVER_VERSION = "1.7.1"


def ensure_bench_venv() -> Path:
    mlserver = BENCH_VENV / "bin" / "mlserver"
    if not mlserver.exists():
        import sklearn

        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        subprocess.run(
            [str(BENCH_VENV / "bin" / "pip"), "install", "-q", f"mlserver=={MLSERVER_VERSION}",
             f"mlserver-sklearn=={MLSERVER_VERSION}", f"scikit-learn=={sklearn.__version__}",
             # MLServer 1.7.1's inference workers call asyncio.get_event_loop(),
             # which uvloop 0.22 turned into an error: its workers die at start.
             "uvloop==0.21.0"],
            check=True,
        )  # fmt: skip
    return mlserver


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before becoming ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - http://127.0.0.1
                if response.status == 200:
                    return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout}s")


@dataclass(frozen=True)
class Target:
    label: str
    protocol: str


@dataclass(frozen=True)
class Running:
    url: str
    grpc: str  # host:port of its Open Inference Protocol gRPC service
    ready_after: float


@contextmanager
def ours(
    model: dict[str, str], logs: Path, drift: bool, microbatch: bool = True
) -> Iterator[Running]:
    port, grpc_port = free_port(), free_port()
    env = {
        **os.environ,
        "MODEL_NAME": "wine",
        "MODEL_VERSION": "1",
        "MODEL_URI": model["uri"],
        "MODEL_SHA256": model["sha256"],
        "MODELSERVER_HOST": "127.0.0.1",
        "MODELSERVER_PORT": str(port),
        "MODELSERVER_GRPC_PORT": str(grpc_port),
        "MODELSERVER_DRIFT_ENABLED": "true" if drift else "false",
        "MODELSERVER_MICROBATCH": "true" if microbatch else "false",
        "MODELSERVER_LOG_LEVEL": "WARNING",
    }
    with (logs / f"ours-{port}.log").open("wb") as log:
        process = subprocess.Popen(
            [str(BIN / "modelrollout"), "serve"], env=env, stdout=log, stderr=log
        )
    try:
        url = f"http://127.0.0.1:{port}"
        ready = wait_ready(f"{url}/v2/models/wine/ready", process)
        yield Running(url, f"127.0.0.1:{grpc_port}", ready)
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def mlserver(joblib_path: Path, logs: Path, workers: int | None) -> Iterator[Running]:
    port, grpc_port = free_port(), free_port()
    folder = Path(tempfile.mkdtemp(prefix="mlserver-", dir=logs))
    (folder / "model.joblib").write_bytes(joblib_path.read_bytes())
    settings = {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": grpc_port,
        "metrics_port": free_port(),
    }
    if workers is not None:
        settings["parallel_workers"] = workers
    (folder / "settings.json").write_text(json.dumps(settings))
    (folder / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "wine",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "1"},
            }
        )
    )
    env = {**os.environ, "MLSERVER_LOGGING_LEVEL": "WARNING"}
    with (folder / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [str(BENCH_VENV / "bin" / "mlserver"), "start", str(folder)],
            env=env, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        ready = wait_ready(f"{url}/v2/models/wine/ready", process)
        yield Running(url, f"127.0.0.1:{grpc_port}", ready)
    finally:
        os.killpg(process.pid, 15)  # MLServer's inference workers are child processes
        process.wait(timeout=30)


def load(url: str, protocol: str, seconds: float, concurrency: int) -> dict[str, object]:
    command = [
        str(BIN / "modelrollout"), "loadgen", "--url", url, "--model", "wine", "--dataset", "wine",
        "--rate", "0", "--duration", str(seconds), "--concurrency", str(concurrency),
        "--protocol", protocol, "--progress", "3600", "--json",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(done.stdout)
    return result


def in_process_cost(model: dict[str, str], requests: int = 3000) -> None:
    """Drift's cost without HTTP or machine noise: CPU time of the core's request path."""
    from prometheus_client import CollectorRegistry

    from modelserver.datasets import load_dataset
    from modelserver.service import load_service
    from modelserver.settings import Settings

    data = load_dataset("wine")
    payloads = [
        {
            "inputs": [
                {"name": n, "datatype": "FP64", "shape": [1], "data": [float(row[i])]}
                for i, n in enumerate(data.feature_names)
            ]
        }
        for row in data.X
    ]
    print("\n| core request path (decode, predict, record), one row | CPU us/request |")
    print("|---|---:|")
    costs = {}
    for drift in (True, False):
        settings = Settings(
            model_uri=model["uri"], model_sha256=model["sha256"], drift_enabled=drift
        )
        service = load_service(settings, CollectorRegistry())
        service.model.prepare_thread()
        best = float("inf")
        for _ in range(3):
            start = time.process_time()
            for i in range(requests):
                decoded = service.decode_v2(payloads[i % len(payloads)], str(i))
                service.infer([decoded])
            best = min(best, time.process_time() - start)
        costs[drift] = best / requests * 1e6
        print(f"| drift monitoring {'on' if drift else 'off'} | {costs[drift]:.0f} |")
    extra = costs[True] - costs[False]
    print(f"\ndrift recording: {extra:.1f} us per one-row request, "
          f"{100 * extra / costs[False]:.1f}% of the core path without it")  # fmt: skip


def protocol_cells(
    model: dict[str, str],
    joblib_path: Path,
    work: Path,
    seconds: float,
    warmup: float,
    concurrency: int,
) -> list[tuple[str, str, str, int, load_tools.Figures]]:
    """Both servers under wrk (REST) and ghz (gRPC), the same rows for each; this server's
    REST also with the binary tensor extension. (tool, server, request, rows, figures)."""
    from modelserver.datasets import load_dataset

    data = load_dataset("wine")
    names = list(data.feature_names)
    bodies = work / "bodies"
    bodies.mkdir(exist_ok=True)
    cells: list[tuple[str, str, str, int, load_tools.Figures]] = []
    for rows in (1, 100):
        matrix = np.asarray(data.X[:rows], dtype=np.float64)
        ours_json = load_tools.v2_json(names, matrix, bodies / f"v2-{rows}.json")
        ours_binary = load_tools.v2_binary(names, matrix, bodies / f"v2-{rows}.bin")
        ours_grpc = load_tools.grpc_per_feature(names, matrix, bodies / f"grpc-{rows}.json")
        theirs_json = load_tools.tensor_json(matrix, bodies / f"tensor-{rows}.json")
        theirs_grpc = load_tools.grpc_tensor(matrix, bodies / f"grpc-tensor-{rows}.json")
        servers = [
            ("modelserver", lambda: ours(model, work, True),
             [("REST JSON", ours_json), ("REST binary", ours_binary)], ours_grpc),
            ("MLServer 1.7.1", lambda: mlserver(joblib_path, work, None),
             [("REST JSON", theirs_json)], theirs_grpc),
        ]  # fmt: skip
        for server_name, start, rest_bodies, grpc_body in servers:
            with start() as running:
                infer = f"{running.url}/v2/models/wine/infer"
                load_tools.run_wrk(infer, rest_bodies[0][1], warmup, concurrency, work)
                for label, body in rest_bodies:
                    figures = load_tools.run_wrk(infer, body, seconds, concurrency, work)
                    cells.append(("wrk", server_name, label, rows, figures))
                    print(f"{server_name} wrk {label} {rows} rows: {figures}", file=sys.stderr)
                load_tools.run_ghz(running.grpc, grpc_body, warmup, concurrency)
                figures = load_tools.run_ghz(running.grpc, grpc_body, seconds, concurrency)
                cells.append(("ghz", server_name, "gRPC", rows, figures))
                print(f"{server_name} ghz gRPC {rows} rows: {figures}", file=sys.stderr)
    return cells


def print_protocol_cells(cells: list[tuple[str, str, str, int, load_tools.Figures]]) -> None:
    print("\n| load tool | server | request | rows | req/s | rows/s | p50 ms | p99 ms | failed |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    rate = {}
    for tool, server, request, rows, f in cells:
        rate[(server, request, rows)] = f.requests_per_second
        print(f"| {tool} | {server} | {request} | {rows} | {f.requests_per_second:.0f} | "
              f"{f.requests_per_second * rows:.0f} | {f.p50_ms:.2f} | {f.p99_ms:.2f} | "
              f"{f.failed} |")  # fmt: skip
    ours_, theirs = "modelserver", "MLServer 1.7.1"
    for request in ("REST JSON", "gRPC"):
        for rows in (1, 100):
            ratio = rate[(ours_, request, rows)] / rate[(theirs, request, rows)]
            print(f"\n{request}, {rows} row(s): modelserver at {ratio:.1f}x MLServer's req/s")
    gain = rate[(ours_, "REST binary", 100)] / rate[(ours_, "REST JSON", 100)]
    print(f"\nbinary tensor extension, 100 rows: {gain:.2f}x the req/s of the same JSON request")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before each")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--only-tools", action="store_true", help="only the wrk/ghz cells (no loadgen rounds)"
    )
    args = parser.parse_args()

    ensure_bench_venv()
    sys.path.insert(0, str(ROOT / "operator"))
    import joblib
    import skops.io

    from modelserver.training import train

    work = Path(tempfile.mkdtemp(prefix="modelserver-bench-"))
    trained = train("wine", "improved", work)
    model = trained.to_json()
    in_process_cost(model)
    estimator = skops.io.load(trained.path, trusted=skops.io.get_untrusted_types(file=trained.path))
    joblib_path = work / "wine.joblib"
    joblib.dump(estimator, joblib_path)
    cells = protocol_cells(model, joblib_path, work, args.duration, args.warmup, args.concurrency)
    print(f"\nwrk and ghz: {args.duration:.0f} s per cell after {args.warmup:.0f} s of warm-up, "
          f"{args.concurrency} connections (wrk, 2 threads) or concurrent calls (ghz, one "
          "HTTP/2 connection); drift monitoring on (the default)")  # fmt: skip
    print_protocol_cells(cells)
    if args.only_tools:
        return 0

    configs = {
        "modelserver, drift monitoring on (default)": (lambda: ours(model, work, True), "v2"),
        "modelserver, drift monitoring off": (lambda: ours(model, work, False), "v2"),
        "modelserver, micro-batching off": (lambda: ours(model, work, True, False), "v2"),
        "modelserver, micro-batching off, drift off": (
            lambda: ours(model, work, False, False),
            "v2",
        ),
        "MLServer 1.7.1, default settings": (
            lambda: mlserver(joblib_path, work, None),
            "v2-tensor",
        ),
        "MLServer 1.7.1, parallel_workers=0": (lambda: mlserver(joblib_path, work, 0), "v2-tensor"),
    }
    results: dict[str, list[dict[str, object]]] = {name: [] for name in configs}
    startup: dict[str, list[float]] = {name: [] for name in configs}
    for round_ in range(args.rounds):
        for name, (start, protocol) in configs.items():
            with start() as running:
                load(running.url, protocol, args.warmup, args.concurrency)
                result = load(running.url, protocol, args.duration, args.concurrency)
            startup[name].append(running.ready_after)
            results[name].append(result)
            print(f"round {round_ + 1} {name}: {json.dumps(result)}", file=sys.stderr)

    print(f"\n{args.rounds} rounds x {args.duration:.0f} s, concurrency {args.concurrency}, "
          f"{os.cpu_count()} CPUs; mean of rounds\n")  # fmt: skip
    print("| server | req/s | p50 ms | p99 ms | non-200 | ready after s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, runs in results.items():
        rps = statistics.mean(float(r["requests_per_second"]) for r in runs)  # type: ignore[arg-type]
        p50 = statistics.mean(float(r["latency_ms"]["p50"]) for r in runs)  # type: ignore[index]
        p99 = statistics.mean(float(r["latency_ms"]["p99"]) for r in runs)  # type: ignore[index]
        bad = sum(n for r in runs for c, n in r["codes"].items() if c != "200")  # type: ignore[attr-defined]
        print(f"| {name} | {rps:.0f} | {p50:.2f} | {p99:.2f} | {bad} | "
              f"{statistics.mean(startup[name]):.1f} |")  # fmt: skip

    def rate(name: str) -> float:
        return statistics.mean(float(r["requests_per_second"]) for r in results[name])  # type: ignore[arg-type]

    for on, off in [
        ("modelserver, drift monitoring on (default)", "modelserver, drift monitoring off"),
        ("modelserver, micro-batching off", "modelserver, micro-batching off, drift off"),
    ]:
        cost = 100 * (rate(off) - rate(on)) / rate(off)
        print(f"\ndrift monitoring cost ({on} vs {off}): {cost:.1f}% of throughput")
    return 0


if __name__ == "__main__":
    sys.exit(main())
