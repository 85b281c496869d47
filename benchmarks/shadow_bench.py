"""Client latency with shadow traffic: off, at 100% to a live challenger, and to one that is down.

A champion and a challenger (`modelrollout serve`, the wine pipeline of
modelserver_bench.py) on loopback. The champion's shadow configuration is a file
naming it champion at the configuration's percent; it is started afresh for each
configuration (the challenger runs throughout, idle unless mirrored to), and
driven by `modelrollout loadgen` twice: closed loop (`--rate 0`, a fixed
concurrency, bounded in time: saturation) and paced (open loop at a fixed rate:
the latency a moderate load sees). Rounds interleave the configurations, so a
slow spell on the machine hits each of them. After each load the champion's
/metrics say what became of the copies. Every request goes to 127.0.0.1.

    .venv/bin/python benchmarks/shadow_bench.py [--duration 10] [--rounds 2]

Figures are printed as Markdown tables; nothing is asserted.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from modelrollout.devenv.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUTCOMES = ("compared", "failed", "timeout", "dropped")


@dataclass(frozen=True)
class Config:
    label: str
    url: str | None  # the challenger to mirror to; None: MODELSERVER_SHADOW_URL unset
    percent: float


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - http://127.0.0.1
        return str(response.read().decode())


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before becoming ready")
        try:
            get(url)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def gauge(url: str, name: str) -> float | None:
    for line in get(f"{url}/metrics").splitlines():
        if line.startswith(name + "{"):
            return float(line.rpartition(" ")[2])
    return None


def until(probe: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not probe() and time.monotonic() < deadline:
        time.sleep(0.1)


def shadow_outcomes(url: str) -> dict[str, float]:
    """modelserver_shadow_requests_total by outcome, summed over challenger versions."""
    totals = dict.fromkeys(OUTCOMES, 0.0)
    for line in get(f"{url}/metrics").splitlines():
        if line.startswith("modelserver_shadow_requests_total{"):
            key, _, value = line.rpartition(" ")
            totals[key.split('outcome="')[1].split('"')[0]] += float(value)
    return totals


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Running:
    url: str
    pid: int


@contextmanager
def server(
    model: dict[str, str], logs: Path, revision: str, version: str, **env: str
) -> Iterator[Running]:
    port = free_port()
    full = {
        **os.environ,
        "MODEL_NAME": "wine",
        "MODEL_VERSION": version,
        "MODEL_URI": model["uri"],
        "MODEL_SHA256": model["sha256"],
        "MODELROLLOUT_REVISION": revision,
        "MODELSERVER_HOST": "127.0.0.1",
        "MODELSERVER_PORT": str(port),
        "MODELSERVER_GRPC_PORT": "0",
        "MODELSERVER_SHUTDOWN_DRAIN_SECONDS": "0",
        "MODELSERVER_LOG_LEVEL": "WARNING",
        **env,
    }
    with (logs / f"{revision}-{port}.log").open("wb") as log:
        process = subprocess.Popen(
            [str(BIN / "modelrollout"), "serve"], env=full, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/v2/health/ready", process)
        yield Running(url, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


def load(url: str, seconds: float, concurrency: int, rate: float) -> dict[str, object]:
    command = [
        str(BIN / "modelrollout"), "loadgen", "--url", url, "--model", "wine", "--dataset", "wine",
        "--rate", str(rate), "--duration", str(seconds), "--concurrency", str(concurrency),
        "--progress", "3600", "--json",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(done.stdout)
    return result


def measure(
    config: Config, model: dict[str, str], work: Path, args: argparse.Namespace
) -> dict[str, dict[str, object]]:
    """One configuration: its champion started, both loads run; figures and copies per load."""
    shadow_file = work / f"shadow-{free_port()}.json"
    shadow_file.write_text(
        json.dumps({"percent": config.percent, "champion": "champion", "challenger": "challenger"})
    )
    env = {"MODELSERVER_SHADOW_CONFIG_FILE": str(shadow_file)}
    if config.url is not None:
        env["MODELSERVER_SHADOW_URL"] = config.url
    results: dict[str, dict[str, object]] = {}
    with server(model, work, "champion", "1", **env) as champion:
        url = champion.url
        # The shadow file is read within a second of start-up.
        until(lambda: gauge(url, "modelserver_shadow_mirror_percent") == config.percent, 10)
        load(url, args.warmup, args.concurrency, 0)
        for name, rate in (("closed", 0.0), ("paced", args.rate)):
            before, cpu = shadow_outcomes(url), cpu_seconds(champion.pid)
            figures = load(url, args.duration, args.concurrency, rate)
            # Copies still in flight when the load stops finish, or time out (2 s).
            until(lambda: not gauge(url, "modelserver_shadow_in_flight"), 10)
            after = shadow_outcomes(url)
            figures["copies"] = {o: after[o] - before[o] for o in OUTCOMES}
            # The champion's own CPU: the challenger shares these cores, clusters do not.
            used = cpu_seconds(champion.pid) - cpu
            figures["champion_cpu_us"] = 1e6 * used / float(figures["sent"])  # type: ignore[arg-type]
            results[name] = figures
            print(f"{config.label} {name}: {json.dumps(figures)}", file=sys.stderr)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=200.0, help="the paced load, requests/s")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "operator"))
    from modelserver.training import train

    work = Path(tempfile.mkdtemp(prefix="shadow-bench-"))
    model = train("wine", "improved", work).to_json()
    with server(model, work, "challenger", "2") as challenger:
        down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        configs = [
            Config("shadow off (no MODELSERVER_SHADOW_URL)", None, 0.0),
            Config("shadow URL set, percent 0", challenger.url, 0.0),
            Config("shadow 100%, challenger up", challenger.url, 100.0),
            Config("shadow 100%, challenger down", down, 100.0),
        ]
        runs: dict[str, list[dict[str, dict[str, object]]]] = {c.label: [] for c in configs}
        for _ in range(args.rounds):
            for config in configs:
                runs[config.label].append(measure(config, model, work, args))

    print(f"\n{args.rounds} rounds x {args.duration:.0f} s per load, {os.cpu_count()} CPUs; "
          f"mean of rounds; copies summed over rounds\n")  # fmt: skip
    for name, title in (
        ("closed", f"closed loop, concurrency {args.concurrency} (saturation)"),
        ("paced", f"paced at {args.rate:g} req/s, concurrency {args.concurrency}"),
    ):
        print(f"\n{title}\n")
        print("| configuration | req/s | p50 ms | p99 ms | non-200 | champion CPU µs/request "
              "| copies compared | failed | timeout | dropped |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for label, results in runs.items():
            figures = [r[name] for r in results]
            rps = statistics.mean(float(f["requests_per_second"]) for f in figures)  # type: ignore[arg-type]
            p50 = statistics.mean(float(f["latency_ms"]["p50"]) for f in figures)  # type: ignore[index]
            p99 = statistics.mean(float(f["latency_ms"]["p99"]) for f in figures)  # type: ignore[index]
            bad = sum(n for f in figures for c, n in f["codes"].items() if c != "200")  # type: ignore[attr-defined]
            cpu = statistics.mean(float(f["champion_cpu_us"]) for f in figures)  # type: ignore[arg-type]
            copies = {o: sum(f["copies"][o] for f in figures) for o in OUTCOMES}  # type: ignore[index]
            print(f"| {label} | {rps:.0f} | {p50:.2f} | {p99:.2f} | {bad} | {cpu:.0f} | "
                  + " | ".join(f"{copies[o]:.0f}" for o in OUTCOMES) + " |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
