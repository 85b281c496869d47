"""Measures the operator in an image: its size, import time, start time and idle RSS.

    DOCKER_HOST=$(bash tools/images/build.sh --docker-host) \\
      .venv/bin/python tools/images/measure.py IMAGE [IMAGE ...]

For each image:
- size: `docker image inspect -f {{.Size}}` (uncompressed layers);
- import: seconds to import what `modelrollout run` imports (the CLI's parser,
  `modelrollout.cli.run`, `modelrollout.handlers.operator`, kopf) inside the
  container, `--network=none`, median of 5 runs; and which ML libraries that loads;
- start: seconds from `docker run -d` to the operator's first watch request for
  ModelDeployments reaching the API server (container start included), median of 3;
- rss: the operator process's VmRSS after it has watched an empty cluster for 15 s.

The API server is a stub in this process (stdlib only), on 127.0.0.1 over plain
HTTP, that answers discovery, lists nothing and holds watches open: enough for
`modelrollout run --standalone -n default` to start and idle, without a cluster.
The container runs with `--network=host` to reach it. Numbers are this machine's,
with whatever else runs on it; compare images measured in one run.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ML_MODULES = ("numpy", "scipy", "sklearn", "pandas", "skops", "palmerpenguins", "onnxruntime")
IMPORT_PROBE = f"""
import sys, time
t = time.perf_counter()
import modelrollout.cli as cli
cli.build_parser()
import modelrollout.cli.run, modelrollout.handlers.operator, kopf
elapsed = time.perf_counter() - t
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({ML_MODULES!r}))
print(f"{{elapsed:.3f}} {{','.join(loaded) or '-'}}")
"""


def resources(*entries: tuple[str, str, bool]) -> list[dict[str, Any]]:
    verbs = ["get", "list", "watch", "create", "update", "patch", "delete"]
    found = []
    for name, kind, namespaced in entries:
        found.append({"name": name, "singularName": name.rstrip("s"), "namespaced": namespaced,
                      "kind": kind, "verbs": verbs})  # fmt: skip
        found.append({"name": f"{name}/status", "singularName": "", "namespaced": namespaced,
                      "kind": kind, "verbs": ["get", "patch", "update"]})  # fmt: skip
    return found


GROUPS: dict[str, list[dict[str, Any]]] = {
    "v1": resources(
        ("pods", "Pod", True),
        ("services", "Service", True),
        ("events", "Event", True),
        ("secrets", "Secret", True),
        ("namespaces", "Namespace", False),
    ),
    "apps/v1": resources(("deployments", "Deployment", True)),
    "modelrollout.io/v1alpha1": resources(("modeldeployments", "ModelDeployment", True)),
    "apiextensions.k8s.io/v1": resources(
        ("customresourcedefinitions", "CustomResourceDefinition", False)
    ),
    "kopf.dev/v1": resources(
        ("kopfpeerings", "KopfPeering", True),
        ("clusterkopfpeerings", "ClusterKopfPeering", False),
    ),
}


class StubApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), StubHandler)
        self.watches: list[tuple[float, str]] = []
        self.stopping = threading.Event()


class StubHandler(BaseHTTPRequestHandler):
    server: StubApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *_: Any) -> None:
        pass

    def reply(self, body: dict[str, Any], status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        path = url.path.rstrip("/")
        if path == "/version":
            return self.reply({"major": "1", "minor": "34", "gitVersion": "v1.34.4"})
        if path == "/api":
            return self.reply({"kind": "APIVersions", "versions": ["v1"]})
        if path == "/apis":
            groups = []
            for group_version in GROUPS:
                if "/" in group_version:
                    group, version = group_version.split("/")
                    gv = {"groupVersion": group_version, "version": version}
                    groups.append({"name": group, "versions": [gv], "preferredVersion": gv})
            return self.reply({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        group_version = path.removeprefix("/api/").removeprefix("/apis/")
        if group_version in GROUPS:
            return self.reply({"kind": "APIResourceList", "groupVersion": group_version,
                               "resources": GROUPS[group_version]})  # fmt: skip
        if parse_qs(url.query).get("watch") == ["true"]:
            self.server.watches.append((time.monotonic(), path))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            # Nothing ever changes; hold the watch until the client or we give up.
            self.server.stopping.wait()
            return None
        items = []
        if path == "/api/v1/namespaces":  # Kopf matches `-n default` against this list
            items = [{"metadata": {"name": "default", "resourceVersion": "1"}}]
        return self.reply({"kind": "List", "apiVersion": "v1",
                           "metadata": {"resourceVersion": "1"}, "items": items})  # fmt: skip

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        self.reply({}, status=201)

    def do_PATCH(self) -> None:
        self.do_POST()

    def do_PUT(self) -> None:
        self.do_POST()


def docker(*args: str, check: bool = True) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


def measure_import(image: str) -> tuple[float, str]:
    runs = []
    loaded = ""
    for _ in range(5):
        out = docker("run", "--rm", "--network=none", "--entrypoint", "python", image,
                     "-c", IMPORT_PROBE)  # fmt: skip
        seconds, loaded = out.split()
        runs.append(float(seconds))
    return statistics.median(runs), loaded


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def measure_run(image: str, server: StubApiServer, kubeconfig: Path) -> tuple[float, int]:
    server.watches.clear()
    started = time.monotonic()
    container = docker(
        "run", "-d", "--network=host", "-v", f"{kubeconfig}:/kubeconfig:ro",
        "-e", "KUBECONFIG=/kubeconfig", image, "run", "--standalone", "-n", "default",
    )  # fmt: skip
    try:
        deadline = started + 60
        while not any("modeldeployments" in path for _, path in server.watches):
            if time.monotonic() > deadline:
                logs = docker("logs", "--tail", "20", container, check=False)
                raise RuntimeError(f"{image}: no watch on modeldeployments in 60 s:\n{logs}")
            time.sleep(0.01)
        first = min(t for t, path in server.watches if "modeldeployments" in path)
        time.sleep(15)
        pid = int(docker("inspect", "-f", "{{.State.Pid}}", container))
        return first - started, rss_kib(pid)
    finally:
        docker("rm", "-f", container, check=False)


def main(images: list[str]) -> int:
    server = StubApiServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "stub",
            "clusters": [{"name": "stub", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
            "users": [{"name": "stub", "user": {"token": "stub"}}],
            "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "stub"}}],
        }))  # fmt: skip
        kubeconfig.chmod(0o644)
        for image in images:
            size = int(docker("image", "inspect", "-f", "{{.Size}}", image))
            imported, loaded = measure_import(image)
            runs = [measure_run(image, server, kubeconfig) for _ in range(3)]
            start = statistics.median(seconds for seconds, _ in runs)
            rss = statistics.median(kib for _, kib in runs)
            print(
                f"{image}: size {size / 1e6:.0f} MB, import {imported:.2f} s (ML modules "
                f"loaded: {loaded}), start {start:.2f} s, idle RSS {rss / 1024:.0f} MiB "
                f"(runs: {', '.join(f'{s:.2f} s/{k / 1024:.0f} MiB' for s, k in runs)})"
            )
            sys.stdout.flush()
    server.stopping.set()
    server.shutdown()
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1:]))
