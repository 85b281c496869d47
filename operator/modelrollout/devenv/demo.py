"""`make demo`: the operator on the embedded local cluster, with a readable timeline.

It starts (or reuses) the local control plane, installs the CRDs, runs the
operator as a separate process, and plays a story: v1 deployed, v2 rolled out
by a stepwise canary and promoted, v3 canaried and aborted, so traffic returns to
v2 at once. It leaves everything running and says how to look around and how
to tear it down.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import yaml
from kubernetes import client, config

from modelrollout.api import names as n
from modelrollout.devenv.cluster import LocalCluster, local_cluster
from modelrollout.devenv.tools import REPO_ROOT

NAMESPACE = "demo"
NAME = "fraud"
STATE = REPO_ROOT / ".local" / "demo"
# Each stage settles in seconds on this machine; the limit only catches a broken setup.
STAGE_TIMEOUT_SECONDS = 180.0
_started = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - _started:6.1f}s] {message}", flush=True)


def _manifest() -> dict[str, Any]:
    body = next(
        d
        for d in yaml.safe_load_all((REPO_ROOT / "examples" / "canary.yaml").read_text())
        if d and d.get("kind") == n.KIND
    )
    body["metadata"] = {"name": NAME, "namespace": NAMESPACE}
    # Metric analysis needs model servers scraped by Prometheus; this story shows
    # the rollout mechanics, so it keeps the example's steps and drops the analysis.
    body["spec"].pop("analysis", None)
    body["spec"]["model"]["version"] = "1"
    body["spec"]["strategy"]["canary"]["steps"] = [
        {"setWeight": 25},
        {"pause": {"duration": "10s"}},
        {"setWeight": 50},
        {"pause": {}},
    ]
    return dict(body)


class Demo:
    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        api = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(cluster.kubeconfig)
        )
        self.custom = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)
        self.operator: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [str(Path(sys.executable).parent / "modelrollout"), *args, "-n", NAMESPACE,
             "--kubeconfig", str(self.cluster.kubeconfig)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"modelrollout {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def status(self) -> dict[str, Any]:
        body = cast(
            "dict[str, Any]",
            self.custom.get_namespaced_custom_object(n.GROUP, n.VERSION, NAMESPACE, n.PLURAL, NAME),
        )
        return dict(body.get("status") or {})

    def ready_pods(self) -> dict[str, int]:
        """Model version -> ready pods, for each revision that has any."""
        deployments = self.apps.list_namespaced_deployment(
            NAMESPACE, label_selector=f"{n.LABEL_DEPLOYMENT}={NAME}"
        ).items
        ready: dict[str, int] = {}
        for d in deployments:
            version = ((d.metadata.labels if d.metadata else None) or {}).get(
                n.LABEL_MODEL_VERSION, "?"
            )
            count = (d.status.ready_replicas if d.status else None) or 0
            if count:
                ready[version] = count
        return ready

    def pods(self) -> str:
        ready = self.ready_pods()
        return ", ".join(f"v{v}: {c} ready" for v, c in sorted(ready.items())) or "no pods"

    def follow(self, done: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """Prints each new status message until `done`; fails after the stage timeout."""
        deadline = time.monotonic() + STAGE_TIMEOUT_SECONDS
        last = ""
        while True:
            status = self.status()
            line = (
                f"{status.get('phase', 'Pending'):<11} {status.get('message', '')}  [{self.pods()}]"
            )
            if line != last:
                say("  " + line)
                last = line
            if done(status):
                return status
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.5)

    def start_operator(self) -> None:
        STATE.mkdir(parents=True, exist_ok=True)
        pid_file = STATE / "operator.pid"
        if pid_file.exists():  # a previous run's operator: one acting operator at a time
            stop_process_group(pid_file)
        log = (STATE / "operator.log").open("ab")
        self.operator = subprocess.Popen(
            [str(Path(sys.executable).parent / "modelrollout"), "run", "-n", NAMESPACE,
             "--standalone"],
            stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig)},
            start_new_session=True,
        )  # fmt: skip
        (STATE / "operator.pid").write_text(str(self.operator.pid))

    def set_version(self, version: str) -> None:
        self.custom.patch_namespaced_custom_object(
            n.GROUP, n.VERSION, NAMESPACE, n.PLURAL, NAME,
            {"spec": {"model": {"version": version}}},
        )  # fmt: skip

    def play(self) -> None:
        say("installing the CRDs")
        self.cluster.kubectl("apply", "--server-side", "-f", str(REPO_ROOT / "crds"))
        self.cluster.kubectl("wait", "--for=condition=Established", "crd", "--all")
        self.cluster.kubectl("create", "namespace", NAMESPACE, check=False)
        say(f"starting the operator (log: {STATE / 'operator.log'})")
        self.start_operator()
        # A previous run's object goes first; the operator releases its finalizer.
        self.cluster.kubectl(
            "delete", n.PLURAL, NAME, "-n", NAMESPACE, "--ignore-not-found", "--timeout=60s"
        )

        say("v1: first deployment of fraud-detector (4 replicas, canary strategy)")
        self.custom.create_namespaced_custom_object(
            n.GROUP, n.VERSION, NAMESPACE, n.PLURAL, _manifest()
        )
        self.follow(lambda s: s.get("phase") == "Healthy", "v1 to be Healthy")

        say("v2: a new model version; canary 25% -> pause 10s -> 50% -> pause until promote")
        self.set_version("2")
        self.follow(lambda s: s.get("reason") == "AwaitingPromotion", "v2 to reach the pause")
        say("v2 looks good at 50%: `modelrollout promote fraud`")
        print(self.cli("promote", NAME).strip())
        self.follow(
            lambda s: s.get("phase") == "Healthy" and s.get("stableVersion") == "2",
            "v2 to be promoted",
        )

        say("v3: another version; canary at 25%")
        self.set_version("3")
        self.follow(lambda s: s.get("currentStep") == 1, "v3's first step")
        say("v3 is suspect: `modelrollout abort fraud` sends all traffic back to v2 at once")
        print(self.cli("abort", NAME).strip())
        status = self.follow(
            lambda s: s.get("phase") == "Degraded" and set(self.ready_pods()) == {"2"},
            "all traffic back on v2",
        )
        say(f"summary: stable v{status.get('stableVersion')}; {status.get('message')}")
        print()
        print(self.cli("status", NAME))
        print(self.cli("history", NAME))
        kubeconfig = self.cluster.kubeconfig.resolve()
        print(
            "Look around:\n"
            f"  export KUBECONFIG={kubeconfig}\n"
            f"  {self.cluster.tools.kubectl} get md,deploy,svc,pods -n {NAMESPACE}\n"
            f"  .venv/bin/modelrollout status {NAME} -n {NAMESPACE} --watch\n"
            f"  .venv/bin/modelrollout retry {NAME} -n {NAMESPACE}    # roll v3 out again\n"
            "Tear down:\n"
            "  make demo-down"
        )


def stop_process_group(pid_file: Path) -> None:
    """Stops the process (and its children) whose group id `pid_file` holds."""
    with contextlib.suppress(ProcessLookupError, ValueError):
        os.killpg(int(pid_file.read_text()), signal.SIGTERM)


def down() -> None:
    """Stops the demo's operator, then the cluster."""
    pid_file = STATE / "operator.pid"
    if pid_file.exists():
        stop_process_group(pid_file)
        pid_file.unlink()
        say("operator stopped")
    local_cluster().down()


def main() -> int:
    if sys.argv[1:] == ["down"]:
        down()
        return 0
    cluster = local_cluster()
    say("starting the local cluster (first run builds its binaries from Go modules)")
    cluster.up()
    Demo(cluster).play()
    return 0


if __name__ == "__main__":
    sys.exit(main())
