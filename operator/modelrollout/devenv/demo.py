"""`make demo`: the operator on the embedded local cluster, with a readable timeline.

It starts (or reuses) the local control plane, installs the CRDs, runs the
operator as a separate process, trains the model variants, and starts the
serving stack in the background (`stack.py`: the artifact store the model-server
pods download from, a real Prometheus discovering those pods through the API
server, client traffic to the Service's ClusterIP). The model servers are real
pods of the model-server image on the cluster's real node. Then it plays a
story that nobody steers by hand: v1 deployed; v2, a better model, canaried
under Prometheus analysis and promoted; v3, trained on data that no longer
matches live traffic, canaried and rolled back automatically, with the metric
and value that condemned it. Then the loop (`retraining_story.py`): a model
served from the embedded MLflow registry by replicas that record every request
and its later label in the inference-records store (PostgreSQL) meets traffic
that has moved; its live accuracy breaks the drift watch's bound, a
retraining Job trains on today's labelled rows, beats it on the same held-out
rows, registers version 2, which is canaried against it and promoted, with where
the time went. It leaves
everything running and says how to look around and how to tear it down.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import requests
import yaml
from kubernetes import client, config

from modelrollout.api import names as n
from modelrollout.devenv import retraining_story as story
from modelrollout.devenv.cluster import DEFAULT_NAME, LocalCluster, local_cluster
from modelrollout.devenv.ports import free_port
from modelrollout.devenv.processes import stop_group
from modelrollout.devenv.stack import (
    DRIFT_QUERY,
    Artifact,
    error_rate_query,
    served_spec,
    train_variants,
)
from modelrollout.devenv.tools import REPO_ROOT
from modelrollout.devenv.traffic import NO_ANSWER, Traffic

NAMESPACE = "demo"
NAME = "fraud"
# Where the demo keeps its state, and the local cluster it plays on; a second
# demo on the machine (or the demo's own test) sets them to stay out of the way.
STATE = Path(os.environ.get("MODELROLLOUT_DEMO_DIR") or REPO_ROOT / ".local" / "demo")
CLUSTER = os.environ.get("MODELROLLOUT_DEMO_CLUSTER") or DEFAULT_NAME
STACK_DIR = STATE / "stack"
MODELS_DIR = STATE / "models"
MODEL_NAME = "fraud-detector"
# Each stage settles in seconds on this machine; the limit only catches a broken setup.
STAGE_TIMEOUT_SECONDS = 180.0
# The stack stops its model servers and Prometheus within seconds of SIGTERM.
STOP_TIMEOUT_SECONDS = 30.0
# Who plays which version: a simple tree, a better pipeline, and a model trained
# on a slice of one feature, to which today's live data looks drifted.
STORY = {"1": "baseline", "2": "improved", "3": "shifted"}
_started = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - _started:6.1f}s] {message}", flush=True)


def _manifest(prometheus: str, served: dict[str, Any]) -> dict[str, Any]:
    body = next(
        d
        for d in yaml.safe_load_all((REPO_ROOT / "examples" / "canary.yaml").read_text())
        if d and d.get("kind") == n.KIND
    )
    body["metadata"] = {"name": NAME, "namespace": NAMESPACE}
    spec = body["spec"]
    spec.update(served)
    spec["strategy"]["canary"]["steps"] = [
        {"setWeight": 25},
        {"pause": {"duration": "6s"}},
        {"setWeight": 50},
        {"pause": {"duration": "6s"}},
    ]
    # The example's analysis, at demo speed and against the demo's Prometheus.
    spec["analysis"].update(
        {"interval": "3s", "prometheus": {"address": prometheus}, "consecutiveErrorLimit": 20}
    )
    spec["analysis"]["metrics"] = [
        {"name": "error-rate", "query": error_rate_query("10s"), "max": 0.05},
        {"name": "feature-drift", "query": DRIFT_QUERY, "max": 0.25},
    ]
    return dict(body)


class Demo:
    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        api = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(cluster.kubeconfig)
        )
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)
        self.operator: subprocess.Popen[bytes] | None = None
        self.prometheus = ""
        self.store = ""
        self.registry = ""
        self.records = ""
        self.models: dict[str, Artifact] = {}

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [str(Path(sys.executable).parent / "modelrollout"), *args, "-n", NAMESPACE,
             "--kubeconfig", str(self.cluster.kubeconfig)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"modelrollout {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def status(self, name: str = NAME) -> dict[str, Any]:
        body = cast(
            "dict[str, Any]",
            self.custom.get_namespaced_custom_object(n.GROUP, n.VERSION, NAMESPACE, n.PLURAL, name),
        )
        return dict(body.get("status") or {})

    def ready_pods(self, name: str = NAME) -> dict[str, int]:
        """Model version -> ready pods, for each revision that has any."""
        deployments = self.apps.list_namespaced_deployment(
            NAMESPACE, label_selector=f"{n.LABEL_DEPLOYMENT}={name}"
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

    def pods(self, name: str = NAME, traffic: Traffic | None = None) -> str:
        ready = self.ready_pods(name)
        pods = ", ".join(f"v{v}: {c} ready" for v, c in sorted(ready.items())) or "no pods"
        shares = traffic.shares() if traffic is not None else self.shares()
        return f"{pods} | traffic {_shares(shares)}"

    def shares(self) -> dict[str, float]:
        """Model version -> share of the Service's answers over the last seconds."""
        try:
            return dict(json.loads((STACK_DIR / "traffic.json").read_text())["shares"])
        except (OSError, ValueError, KeyError):
            return {}

    def follow(
        self,
        done: Callable[[dict[str, Any]], bool],
        what: str,
        name: str = NAME,
        traffic: Traffic | None = None,
    ) -> dict[str, Any]:
        """Prints each new status message until `done`; fails after the stage timeout."""
        deadline = time.monotonic() + STAGE_TIMEOUT_SECONDS
        last = ""
        while True:
            status = self.status(name)
            pods = self.pods(name, traffic)
            line = f"{status.get('phase', 'Pending'):<11} {status.get('message', '')}  [{pods}]"
            # Shares move a little on every poll; print when the rollout moves.
            if line.split(" | traffic")[0] != last.split(" | traffic")[0]:
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
            env={**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig), **story.OPERATOR_ENV},
            start_new_session=True,
        )  # fmt: skip
        (STATE / "operator.pid").write_text(str(self.operator.pid))

    def start_stack(self) -> None:
        """The artifact store, Prometheus and traffic, in the background (own session)."""
        stop_stack()
        shutil.rmtree(STACK_DIR, ignore_errors=True)
        STACK_DIR.mkdir(parents=True)
        with (STATE / "stack.log").open("ab") as log:
            stack = subprocess.Popen(
                [sys.executable, "-m", "modelrollout.devenv.stack", "--cluster", CLUSTER,
                 "-n", NAMESPACE, "--service", NAME, "--model", MODEL_NAME,
                 "--workdir", str(STACK_DIR), "--artifacts", str(MODELS_DIR),
                 "--prometheus-port", str(free_port()),
                 "--rate", "30", "--feedback-share", "0.3", "--registry", "--records"],
                stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig)},
                start_new_session=True,
            )  # fmt: skip
        (STATE / "stack.pid").write_text(str(stack.pid))
        deadline = time.monotonic() + STAGE_TIMEOUT_SECONDS
        started = STACK_DIR / "stack.json"
        while not (started.exists() and _ready(json.loads(started.read_text())["prometheus"])):
            if stack.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the serving stack did not start; see {STATE / 'stack.log'}")
            time.sleep(0.3)
        addresses = json.loads(started.read_text())
        self.prometheus, self.store = addresses["prometheus"], addresses["artifacts"]
        self.registry, self.records = addresses["registry"], addresses["records"]

    def served(self, version: str) -> dict[str, Any]:
        images = self.cluster.node_images
        assert images is not None, "the demo's cluster was started without images"
        artifact = self.models[STORY[version]]
        # The stack serves MODELS_DIR itself: each artifact sits at the store's root.
        uri = f"{self.store}/{Path(urlsplit(artifact.uri).path).name}"
        return served_spec(images.workload, artifact, uri, version, model=MODEL_NAME)

    def set_version(self, version: str) -> None:
        self.custom.patch_namespaced_custom_object(
            n.GROUP, n.VERSION, NAMESPACE, n.PLURAL, NAME,
            {"spec": self.served(version)},
        )  # fmt: skip

    def analysis(self, status: dict[str, Any]) -> str:
        measured = status.get("analysis") or {}
        return ", ".join(
            f"{metric} {m.get('value'):.3g} ({m.get('threshold')})"
            for metric, m in measured.items()
            if m.get("value") is not None
        )

    def play(self) -> None:
        say("installing the CRDs")
        install_crds(self.cluster)
        self.cluster.kubectl("create", "namespace", NAMESPACE, check=False)
        say(f"starting the operator (log: {STATE / 'operator.log'})")
        self.start_operator()
        # A previous run's objects go first; the operator releases their finalizers.
        self.cluster.kubectl(
            "delete", n.PLURAL, NAME, story.NAME, "-n", NAMESPACE, "--ignore-not-found",
            "--timeout=60s",
        )  # fmt: skip
        say("training the models: v1 baseline tree, v2 better pipeline, v3 on stale data")
        self.models = train_variants(MODELS_DIR, variants=sorted(set(STORY.values())))
        for version, variant in STORY.items():
            say(f"  v{version}: {variant}, held-out accuracy "
                f"{self.models[variant].holdout_accuracy:.3f}")  # fmt: skip
        say("starting the artifact store, Prometheus (finding pods through the API server) "
            "and 30 req/s of client traffic to the Service's ClusterIP")  # fmt: skip
        self.start_stack()
        say(f"  Prometheus at {self.prometheus}, artifacts at {self.store} "
            f"(log: {STATE / 'stack.log'})")  # fmt: skip

        say("v1: first deployment of fraud-detector (4 real pods, canary strategy)")
        self.custom.create_namespaced_custom_object(
            n.GROUP, n.VERSION, NAMESPACE, n.PLURAL, _manifest(self.prometheus, self.served("1"))
        )  # fmt: skip
        self.follow(
            # Ready pods: each downloaded and verified its model, then passed its probe.
            lambda s: s.get("phase") == "Healthy" and self.shares().get("1", 0.0) > 0.95,
            "v1 to be Healthy and answering",
        )

        say("v2: a better model; canary 25% -> 50%, each step gated by error rate and drift")
        self.set_version("2")
        status = self.follow(
            lambda s: s.get("phase") == "Healthy" and s.get("stableVersion") == "2",
            "v2 to be promoted by its analysis",
        )
        say(f"v2 promoted on its measurements: {self.analysis(status)}")

        say("v3: a model trained on stale data; live traffic looks drifted to it")
        self.set_version("3")
        status = self.follow(
            lambda s: s.get("phase") == "Degraded" and set(self.ready_pods()) == {"2"},
            "v3 to be rolled back",
        )
        rollback = status.get("lastRollback") or {}
        say(
            f"v3 rolled back automatically: {rollback.get('metric')} = "
            f"{rollback.get('value', 0):.3g} ({rollback.get('threshold')}); all traffic on v2"
        )
        say(f"summary: stable v{status.get('stableVersion')}; {status.get('message')}")
        print()
        print(self.cli("status", NAME))
        print(self.cli("history", NAME))
        self.play_loop()
        kubeconfig = self.cluster.kubeconfig.resolve()
        print(
            "Look around:\n"
            f"  export KUBECONFIG={kubeconfig}\n"
            f"  {self.cluster.tools.kubectl} get md,deploy,svc,pods -n {NAMESPACE} -o wide\n"
            f"  {self.cluster.tools.kubectl} logs -n {NAMESPACE} -l {n.LABEL_DEPLOYMENT}={NAME}\n"
            f"  .venv/bin/modelrollout status {NAME} -n {NAMESPACE} --watch\n"
            f"  .venv/bin/modelrollout history {story.NAME} -n {NAMESPACE}\n"
            f"  {self.cluster.tools.kubectl} get jobs -n {NAMESPACE}   # the retraining run\n"
            f"  {self.prometheus}/graph?g0.expr="
            "sum+by+(model_version)+(rate(modelserver_requests_total[30s]))\n"
            f"  cat {STACK_DIR / 'traffic.json'}   # what clients got, per version\n"
            "Tear down (operator, model servers, traffic, Prometheus, cluster):\n"
            "  make demo-down"
        )

    def play_loop(self) -> None:
        """The second story: the loop, from a rotting model to its retrained successor."""
        say("the loop: a model that rots is retrained on its own labelled traffic")
        say("  diagnosis v1: fitted on the breast-cancer table as it was; "
            f"registered in MLflow ({self.registry}) behind '{story.ALIAS}'")  # fmt: skip
        from modelrollout.devenv.usermodels import DATASET, packaged_classifier

        champion = packaged_classifier(STATE / "diagnosis-v1")
        champion.register(self.registry, story.REGISTERED, story.ALIAS)
        core = client.CoreV1Api(self.api)
        with contextlib.suppress(client.ApiException):  # a previous run's
            core.delete_namespaced_secret(story.RECORDS_SECRET, NAMESPACE)
        core.create_namespaced_secret(NAMESPACE, story.records_secret(self.records))
        images = self.cluster.node_images
        assert images is not None, "the demo's cluster was started without images"
        body = story.manifest(images.workload, self.prometheus, self.registry)
        self.custom.create_namespaced_custom_object(n.GROUP, n.VERSION, NAMESPACE, n.PLURAL, body)
        bounds = f"live-accuracy < {story.LIVE_ACCURACY_MIN}"
        say("  2 replicas record every request and its later label in the inference-records "
            f"store (PostgreSQL); retraining is triggered by {bounds}")  # fmt: skip
        self.follow(lambda s: s.get("phase") == "Healthy", "diagnosis v1 to be Healthy",
                    name=story.NAME)  # fmt: skip
        allowed = [ipaddress.ip_network(r) for r in self.cluster.network.routed_ranges]
        traffic = Traffic(
            self.api, NAMESPACE, story.NAME, model=story.NAME, allowed=allowed,
            dataset=DATASET, rate=story.RATE, drift_shift=story.DRIFT_SHIFT,
            feedback_share=1.0, feedback_via_service=True,
            feedback_delay=story.LABEL_DELAY_SECONDS, duration=STAGE_TIMEOUT_SECONDS * 3,
        )  # fmt: skip
        onset = datetime.now(UTC)
        traffic.start()
        delay = story.LABEL_DELAY_SECONDS
        say(f"  today's traffic, {story.RATE:.0f} req/s: every feature {story.DRIFT_SHIFT:g} "
            f"std higher than in training; each true label posted {delay:.0f} s later "
            "through the Service (any replica)")  # fmt: skip
        try:
            status = self.follow(
                lambda s: bool((s.get("retraining") or {}).get("active") or s.get("drift")),
                "the drift watch to fire", name=story.NAME, traffic=traffic,
            )  # fmt: skip
            drift = status.get("drift") or {}
            say(f"  drift: {drift.get('metric')} = {drift.get('value') or 0:.3f} "
                f"({drift.get('threshold')}) on the stable version")  # fmt: skip
            status = self.follow(
                lambda s: ((s.get("retraining") or {}).get("last") or {}).get("number") == 1,
                "the retraining Job to finish", name=story.NAME, traffic=traffic,
            )  # fmt: skip
            run = status["retraining"]["last"]
            say(f"  Job {run['job']}: {run['outcome']}: {run['message']}")
            if run["outcome"] != "Accepted":
                raise RuntimeError(
                    f"the retraining run ended {run['outcome']}: {run['message']} "
                    f"(kubectl logs -n {NAMESPACE} job/{run['job']})"
                )
            status = self.follow(
                lambda s: s.get("stableVersion") == "2" and s.get("phase") == "Healthy"
                and set(self.ready_pods(story.NAME)) == {"2"},
                "diagnosis v2 to be promoted", name=story.NAME, traffic=traffic,
            )  # fmt: skip
            serving_all = datetime.now(UTC)
        finally:
            traffic.stop()
        say(f"diagnosis v2 (retrained) serves all traffic: "
            f"{story.summary(run, story.figures(onset, run, serving_all))}")  # fmt: skip
        print()
        print(self.cli("history", story.NAME))


def _shares(shares: dict[str, float]) -> str:
    shown = [
        f"{'no answer' if v == NO_ANSWER else 'v' + v} {100 * s:.0f}%" for v, s in shares.items()
    ]
    return " ".join(shown) or "starting"


def install_crds(cluster: LocalCluster) -> None:
    """Applies crds/ to the demo's cluster and waits until they are served."""
    # --force-conflicts: the demo owns these CRDs on its own cluster, so it takes
    # over any field another manager set. Without it, CRDs applied there before by
    # hand make this fail with a conflict on .spec.versions: with plain `kubectl
    # apply -f crds/` (manager kubectl-client-side-apply) from a checkout whose CRD
    # the API server stores differently from the file (as it did before dryRun's
    # description was quoted), or changed since by another manager (`kubectl
    # patch`, `kubectl edit`). tests/integration/test_demo_crds.py has both.
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO_ROOT / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all")


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/-/ready", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def stop_process_group(pid_file: Path) -> None:
    """Stops the process group whose leader's pid `pid_file` holds (the serving
    stack first stops its traffic, store and Prometheus, the operator its
    daemons), and removes the pid file."""
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        pid_file.unlink(missing_ok=True)
        return
    stop_group(pid, STOP_TIMEOUT_SECONDS)
    pid_file.unlink(missing_ok=True)


def stop_stack() -> None:
    stop_process_group(STATE / "stack.pid")


def down() -> None:
    """Stops the serving stack (traffic, model servers, Prometheus), the demo's
    operator, then the cluster; each is gone before the next is stopped."""
    if (STATE / "stack.pid").exists():
        stop_stack()
        say("traffic, the artifact store and Prometheus stopped")
    pid_file = STATE / "operator.pid"
    if pid_file.exists():
        stop_process_group(pid_file)
        say("operator stopped")
    local_cluster(CLUSTER, with_images=False).down()


def main() -> int:
    if sys.argv[1:] == ["down"]:
        down()
        return 0
    cluster = local_cluster(CLUSTER)
    say("starting the local cluster (first run builds its binaries from Go modules)")
    cluster.up()
    try:
        Demo(cluster).play()
    except KeyboardInterrupt:
        print("\ninterrupted; the operator and the serving stack still run: `make demo-down`")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
