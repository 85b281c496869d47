"""Helpers for the model-server tests: free ports, a server process, polling with deadlines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelrollout.devenv.ports import free_port
from support.waiting import wait_for

CLI = str(Path(sys.executable).with_name("modelrollout"))


def http(
    method: str, url: str, body: bytes | str | None = None, headers: Mapping[str, str] = {}
) -> tuple[int, Any, Mapping[str, str]]:
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw, status, head = response.read(), response.status, response.headers
    except urllib.error.HTTPError as error:
        raw, status, head = error.read(), error.code, error.headers
    try:
        parsed: Any = json.loads(raw)
    except ValueError:
        parsed = raw.decode(errors="replace")
    return status, parsed, head


def metric_samples(text: str, name: str) -> dict[str, float]:
    """{label-string: value} for every sample of `name` in a Prometheus text scrape."""
    samples = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            key, _, value = line.rpartition(" ")
            samples[key[len(name) :]] = float(value)
    return samples


def label(samples: dict[str, float], **labels: str) -> float | None:
    for key, value in samples.items():
        if all(f'{k}="{v}"' in key for k, v in labels.items()):
            return value
    return None


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    grpc_address: str = ""

    def metrics(self) -> str:
        status, text, _ = http("GET", f"{self.url}/metrics")
        assert status == 200
        return str(text)

    def wait_until(self, path: str, what: str) -> None:
        """Until GET `path` answers 200; fails at once if the process exits."""

        def ok() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.log.read_text()}")
            try:
                return http("GET", self.url + path)[0] == 200
            except OSError:
                return False

        wait_for(ok, timeout=60, what=what, interval=0.05)

    def log_lines(self) -> list[dict[str, Any]]:
        """The server's log so far, one parsed JSON object per line (each line must be JSON)."""
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]


@contextmanager
def running_server(
    artifact: Mapping[str, Any],
    log_dir: Path,
    name: str = "wine",
    wait_ready: bool = True,
    **env: str,
) -> Iterator[Server]:
    """A `modelrollout serve` process on a free loopback port, ready unless `wait_ready` is off."""
    port, grpc_port = free_port(), free_port()
    full_env = {
        **os.environ,
        "MODEL_NAME": name,
        "MODEL_VERSION": "1",
        "MODEL_URI": str(artifact["uri"]),
        "MODEL_SHA256": str(artifact["sha256"]),
        "MODELSERVER_HOST": "127.0.0.1",
        "MODELSERVER_PORT": str(port),
        "MODELSERVER_GRPC_PORT": str(grpc_port),
        # Nothing routes to these servers: stop at once (test_ms_service covers the drain).
        "MODELSERVER_SHUTDOWN_DRAIN_SECONDS": "0",
        **env,
    }
    log = log_dir / f"server-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([CLI, "serve"], env=full_env, stdout=sink, stderr=sink)
    server = Server(f"http://127.0.0.1:{port}", process, log, f"127.0.0.1:{grpc_port}")
    try:
        if wait_ready:
            server.wait_until("/v2/health/ready", "the model server to become ready")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def v2_body(row: Mapping[str, Any], **extra: Any) -> str:
    inputs = [
        {
            "name": k,
            "datatype": "BYTES" if isinstance(v, str) else "FP64",
            "shape": [1],
            "data": [v],
        }
        for k, v in row.items()
    ]
    return json.dumps({"inputs": inputs, **extra})


class ProjectedFile:
    """A file that changes the way the kubelet updates a projected ConfigMap key:
    `<dir>/<name>` links to `..data/<name>`, `..data` to a timestamped directory, and an
    update writes a new directory and swaps `..data` in one rename."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.path = directory / name
        self._updates = 0

    def write(self, text: str) -> None:
        self._updates += 1
        version = self.directory / f"..2025_01_01_00_00_{self._updates:02d}"
        version.mkdir(parents=True)
        (version / self.path.name).write_text(text)
        swap = self.directory / "..data_tmp"
        swap.symlink_to(version.name)
        swap.replace(self.directory / "..data")
        if not self.path.is_symlink():
            self.path.symlink_to(f"..data/{self.path.name}")
