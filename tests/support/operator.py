"""Runs the real operator (`modelrollout run`) as a separate process against the
test cluster, the way users run it, so tests can also kill and restart it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from modelrollout.devenv.processes import stop_child
from support.kube import ClusterUnderTest

MODELROLLOUT = Path(sys.executable).parent / "modelrollout"


@dataclass
class OperatorProcess:
    cluster: ClusterUnderTest
    namespace: str
    log_path: Path
    # Standalone unless a test runs several replicas with Kopf peering.
    options: tuple[str, ...] = ("--standalone",)
    env: dict[str, str] = field(default_factory=dict)
    # The namespace as MODELROLLOUT_NAMESPACES rather than --namespace: the command
    # line is then exactly `modelrollout run [options]`, as a user types it.
    namespace_from_env: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        scope = {"MODELROLLOUT_NAMESPACES": self.namespace} if self.namespace_from_env else {}
        argv = [str(MODELROLLOUT), "run"]
        if not self.namespace_from_env:
            argv += ["--namespace", self.namespace]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*argv, *self.options],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env, **scope, "KUBECONFIG": str(self.cluster.kubeconfig)},
        )
        log.close()

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, as when a node dies under the operator."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            stop_child(self.process, grace_seconds=20)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_operator(
    cluster: ClusterUnderTest,
    namespace: str,
    log_dir: Path,
    env: dict[str, str] | None = None,
) -> Iterator[OperatorProcess]:
    operator = OperatorProcess(
        cluster, namespace, log_dir / f"operator-{namespace}.log", env=dict(env or {})
    )
    operator.start()
    try:
        yield operator
    finally:
        operator.stop()
