"""Real model-server processes for KWOK's simulated pods.

KWOK marks pods Running and Ready but runs nothing, so on the local cluster a
ModelDeployment's pods would serve no request and export no metric. The runner
closes that gap the way a kubelet would: it watches the pods the operator made
(label app.kubernetes.io/managed-by=modelrollout) and, for each Ready one, runs
`modelrollout serve` on a free loopback port with that pod's container env
(MODEL_*, MODELROLLOUT_REVISION and whatever MODELSERVER_* the template sets,
such as a fault-injection rate a test declares in its manifest).

The servers are published to Prometheus through file-based service discovery,
with the labels a real cluster's pod discovery and relabelling would give
(namespace, pod, revision, model_version, model_name, and deployment: the
ModelDeployment's name, so queries can tell two rollouts' "version 2" apart).
The same file tells the
traffic component (`traffic.py`) which loopback port stands for which pod.

Two differences from a kubelet are deliberate. A simulated pod is Ready before
its process has loaded the model (~2.5 s, mostly importing scikit-learn), so a
server is published only once its own readiness endpoint says so: that is what
a readiness probe would have made the pod's Ready mean. And a pod that goes away
is unpublished at once but its server is stopped a little later, the drain a
preStop hook gives real pods while endpoints converge.

Dev and test tooling, not the operator.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import requests
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from modelrollout.api import names as n
from modelrollout.devenv.ports import free_port
from modelrollout.devenv.processes import signal_group

log = logging.getLogger("modelrollout.devenv.podrunner")

MODELROLLOUT = Path(sys.executable).parent / "modelrollout"
SELECTOR = f"{n.LABEL_MANAGED_BY}={n.MANAGER}"
# Env a pod may hand its server; anything else (image-specific variables) has no
# meaning for a loopback process, and the runner's own environment must not leak
# MODEL_* or MODELSERVER_* settings into a server the pod did not ask for.
POD_ENV_PREFIXES = ("MODEL_", "MODELSERVER_", "MODELROLLOUT_")
# Kubernetes' own default terminationGracePeriodSeconds is 30 s; a model server
# stops in well under a second, so 5 s only bounds a wedged one.
STOP_GRACE_SECONDS = 5.0
# Longer than the traffic component's endpoint refresh (0.5 s) and a scrape or two,
# so nobody is still sending to a server when it stops.
DRAIN_SECONDS = 2.0
# A server not ready after this has failed to load (bad digest, missing profile).
READY_TIMEOUT_SECONDS = 60.0
# Server-side watch timeout: a watch thread notices `stop()` at least this often.
WATCH_TIMEOUT_SECONDS = 5
SUPERVISE_PERIOD_SECONDS = 0.2
HTTP_GONE = 410


@dataclass(frozen=True)
class PodKey:
    namespace: str
    name: str


@dataclass(frozen=True)
class PodWanted:
    """What a Ready pod asks for: its identity labels and its server's env."""

    uid: str
    env: Mapping[str, str]
    labels: Mapping[str, str]


@dataclass
class Server:
    key: PodKey
    wanted: PodWanted
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    started: float = field(default_factory=time.monotonic)
    ready: bool = False
    failed: str = ""
    stop_at: float | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def wanted_from_pod(pod: client.V1Pod) -> PodWanted | None:
    """The server a pod should have running now, or None (not Ready, or going away)."""
    meta, spec, status = pod.metadata, pod.spec, pod.status
    if meta is None or spec is None or status is None or meta.deletion_timestamp is not None:
        return None
    ready = any(c.type == "Ready" and c.status == "True" for c in status.conditions or [])
    if not ready or status.phase != "Running":
        return None
    container = next((c for c in spec.containers if "serve" in (c.args or [])), spec.containers[0])
    env: dict[str, str] = {}
    for variable in container.env or []:
        if variable.value_from is not None:
            # Secrets and field refs have no loopback meaning; the server's defaults apply.
            log.warning("pod %s: env %s uses valueFrom; not passed", meta.name, variable.name)
        elif variable.name.startswith(POD_ENV_PREFIXES):
            env[variable.name] = variable.value or ""
    pod_labels = meta.labels or {}
    labels = {
        "namespace": meta.namespace or "",
        "pod": meta.name or "",
        "revision": pod_labels.get(n.LABEL_REVISION, ""),
        "model_version": env.get(n.ENV_MODEL_VERSION, pod_labels.get(n.LABEL_MODEL_VERSION, "")),
        "model_name": env.get(n.ENV_MODEL_NAME, ""),
        "deployment": pod_labels.get(n.LABEL_DEPLOYMENT, ""),
    }
    return PodWanted(uid=meta.uid or "", env=env, labels=labels)


def _pod_name(pod: client.V1Pod) -> str:
    return (pod.metadata.name if pod.metadata else None) or ""


def scrape_config(file_sd: Path, job: str = "modelservers") -> dict[str, Any]:
    """A Prometheus scrape config for the runner's targets.

    honor_labels: the servers already label every series with model_name and
    model_version (the same values); without it Prometheus would rename theirs
    to exported_model_version and queries written for a real cluster would miss.
    """
    return {
        "job_name": job,
        "honor_labels": True,
        "file_sd_configs": [{"files": [str(file_sd)], "refresh_interval": "1s"}],
    }


def read_targets(file_sd: Path) -> dict[PodKey, tuple[str, dict[str, str]]]:
    """(namespace, pod) -> (loopback address, labels) from a file_sd file."""
    try:
        groups = json.loads(file_sd.read_text())
    except (OSError, ValueError):
        return {}
    found: dict[PodKey, tuple[str, dict[str, str]]] = {}
    for group in groups:
        labels = dict(group.get("labels") or {})
        for target in group.get("targets") or []:
            found[PodKey(labels.get("namespace", ""), labels.get("pod", ""))] = (target, labels)
    return found


class PodRunner:
    """Watches pods in `namespaces` and keeps one `modelrollout serve` per Ready pod."""

    def __init__(
        self,
        kubeconfig: Path,
        namespaces: Sequence[str],
        file_sd: Path,
        log_dir: Path,
        drain_seconds: float = DRAIN_SECONDS,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.namespaces = tuple(namespaces)
        self.file_sd = file_sd
        self.log_dir = log_dir
        self.drain_seconds = drain_seconds
        self._wanted: dict[PodKey, PodWanted] = {}
        self._servers: dict[PodKey, Server] = {}
        self._retiring: list[Server] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._published: list[dict[str, Any]] | None = None

    # Lifecycle.

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._publish()
        api = config.new_client_from_config(config_file=str(self.kubeconfig))  # type: ignore[no-untyped-call]
        for namespace in self.namespaces:
            self._spawn(f"watch-{namespace}", self._watch, client.CoreV1Api(api), namespace)
        self._spawn("supervise", self._supervise)
        # Last resort when the interpreter exits without calling stop().
        atexit.register(self.stop)

    def stop(self) -> None:
        """Stops every server (SIGTERM to its process group, SIGKILL after a grace)."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=WATCH_TIMEOUT_SECONDS + 2)
        with self._lock:
            servers = [*self._servers.values(), *self._retiring]
            self._servers.clear()
            self._retiring.clear()
            self._wanted.clear()
        stop_servers(servers)
        self._publish()
        atexit.unregister(self.stop)

    def __enter__(self) -> PodRunner:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, name: str, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # What tests and the demo read.

    def servers(self) -> dict[PodKey, Server]:
        with self._lock:
            return dict(self._servers)

    def ready_addresses(self) -> dict[PodKey, str]:
        return {k: s.address for k, s in self.servers().items() if s.ready}

    # Watching pods.

    def _watch(self, core: client.CoreV1Api, namespace: str) -> None:
        while not self._stopping.is_set():
            try:
                listed = core.list_namespaced_pod(namespace, label_selector=SELECTOR)
                self._replace_namespace(namespace, listed.items)
                stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
                    core.list_namespaced_pod,
                    namespace,
                    label_selector=SELECTOR,
                    resource_version=listed.metadata.resource_version if listed.metadata else None,
                    timeout_seconds=WATCH_TIMEOUT_SECONDS,
                )
                for event in stream:
                    if self._stopping.is_set():
                        break
                    pod: client.V1Pod = event["object"]
                    wanted = None if event["type"] == "DELETED" else wanted_from_pod(pod)
                    self._set_wanted(PodKey(namespace, _pod_name(pod)), wanted)
            except ApiException as error:
                # 410 Gone: the resource version expired; the next list starts afresh.
                if error.status != HTTP_GONE:
                    log.warning("watching pods in %s: %s", namespace, error.reason)
                    self._stopping.wait(1.0)
            except Exception as error:  # the API server restarting, a dropped stream
                log.warning("watching pods in %s: %s", namespace, error)
                self._stopping.wait(1.0)

    def _replace_namespace(self, namespace: str, pods: list[client.V1Pod]) -> None:
        seen = {PodKey(namespace, _pod_name(p)): wanted_from_pod(p) for p in pods}
        with self._lock:
            gone = [k for k in self._wanted if k.namespace == namespace and k not in seen]
        for key in gone:
            self._set_wanted(key, None)
        for key, wanted in seen.items():
            self._set_wanted(key, wanted)

    def _set_wanted(self, key: PodKey, wanted: PodWanted | None) -> None:
        with self._lock:
            if wanted is None:
                self._wanted.pop(key, None)
            else:
                self._wanted[key] = wanted

    # Converging servers on what the pods want.

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            self._converge()
            self._check_readiness()
            self._stop_drained()
            self._publish()
            self._stopping.wait(SUPERVISE_PERIOD_SECONDS)

    def _converge(self) -> None:
        with self._lock:
            wanted = dict(self._wanted)
            now = time.monotonic()
            for key, server in list(self._servers.items()):
                if wanted.get(key) != server.wanted:
                    # Gone, not Ready any more, or a new pod under the same name.
                    server.stop_at = now + self.drain_seconds
                    self._retiring.append(self._servers.pop(key))
            starting = [(k, w) for k, w in wanted.items() if k not in self._servers]
        # Popen returns at once, so servers load concurrently.
        for key, want in starting:
            server = self._launch(key, want)
            with self._lock:
                self._servers[key] = server

    def _launch(self, key: PodKey, wanted: PodWanted) -> Server:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(POD_ENV_PREFIXES)}
        env.update(wanted.env)
        # The pod's IP and containerPort become a loopback port: every target is local.
        env.update({"MODELSERVER_HOST": "127.0.0.1", "MODELSERVER_PORT": str(port)})
        # The runner drains itself (DRAIN_SECONDS before SIGTERM, as the endpoint is
        # removed): a second drain in the server would outlast the stop grace.
        env.setdefault("MODELSERVER_SHUTDOWN_DRAIN_SECONDS", "0")
        log_path = self.log_dir / f"{key.namespace}.{key.name}.log"
        with log_path.open("ab") as out:
            process = subprocess.Popen(
                [str(MODELROLLOUT), "serve"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                # Its own process group: stopping it stops anything it started.
                start_new_session=True,
            )
        log.info(
            "pod %s/%s: serve on 127.0.0.1:%d (pid %d)", key.namespace, key.name, port, process.pid
        )
        return Server(key=key, wanted=wanted, port=port, process=process, log_path=log_path)

    def _check_readiness(self) -> None:
        for server in self.servers().values():
            if server.ready or server.failed:
                continue
            if server.process.poll() is not None:
                server.failed = f"exited with status {server.process.returncode}"
            elif time.monotonic() - server.started > READY_TIMEOUT_SECONDS:
                server.failed = f"not ready after {READY_TIMEOUT_SECONDS:.0f} s"
            else:
                server.ready = _answers_ready(server.address)
                continue
            log.error("pod %s: server %s; see %s", server.key.name, server.failed, server.log_path)

    def _stop_drained(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [s for s in self._retiring if s.stop_at is not None and s.stop_at <= now]
            self._retiring = [s for s in self._retiring if s not in due]
        stop_servers(due)

    def _publish(self) -> None:
        """Rewrites the file_sd file atomically when the set of ready servers changed."""
        with self._lock:
            groups = [
                {"targets": [s.address], "labels": dict(s.wanted.labels)}
                for _, s in sorted(self._servers.items(), key=lambda i: (i[0].namespace, i[0].name))
                if s.ready and not s.failed
            ]
        if groups == self._published:
            return
        self.file_sd.parent.mkdir(parents=True, exist_ok=True)
        partial = self.file_sd.with_name(f".{self.file_sd.name}.tmp")
        partial.write_text(json.dumps(groups, indent=1))
        # A rename is atomic: Prometheus and the traffic component never read half a file.
        partial.replace(self.file_sd)
        self._published = groups


def _answers_ready(address: str) -> bool:
    try:
        return requests.get(f"http://{address}/v2/health/ready", timeout=0.5).status_code == 200
    except requests.RequestException:
        return False


def stop_servers(servers: Sequence[Server], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM to every server's group at once, then SIGKILL what outlives the grace."""
    for server in servers:
        signal_group(server.process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for server in servers:
        try:
            server.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            signal_group(server.process.pid, signal.SIGKILL)
            server.process.wait()


@contextlib.contextmanager
def running_pod_runner(
    kubeconfig: Path, namespaces: Sequence[str], file_sd: Path, log_dir: Path
) -> Iterator[PodRunner]:
    runner = PodRunner(kubeconfig, namespaces, file_sd, log_dir)
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m modelrollout.devenv.podrunner",
        description="Run real model servers for the simulated pods of ModelDeployments.",
    )
    parser.add_argument("--kubeconfig", type=Path, default=os.environ.get("KUBECONFIG"))
    parser.add_argument("--namespace", "-n", action="append", required=True)
    parser.add_argument("--file-sd", type=Path, required=True, help="Prometheus file_sd JSON")
    parser.add_argument("--log-dir", type=Path, required=True, help="one log per server")
    args = parser.parse_args(argv)
    if args.kubeconfig is None:
        parser.error("--kubeconfig or KUBECONFIG is required")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop_on_signals()
    with running_pod_runner(args.kubeconfig, args.namespace, args.file_sd, args.log_dir):
        wait_for_signal()
    return 0


def stop_on_signals() -> None:
    """SIGTERM (what `make demo-down` and CI send) unwinds like Ctrl-C, so the
    callers' finally blocks stop their children; a second signal cannot cut that
    clean-up short, since both are ignored from the first one on."""

    def handler(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def wait_for_signal() -> None:
    """Blocks until SIGTERM or SIGINT, once `stop_on_signals` is installed."""
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
