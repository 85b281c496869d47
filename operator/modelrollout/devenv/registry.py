"""The embedded model registry of the local cluster: a real MLflow tracking server
(its model registry on SQLite, artifacts stored in a directory and served over
HTTP with --serve-artifacts) listening on 127.0.0.1, and reachable from the pods
at one address that this machine's own clients use too (`expose_here_too`), so
the URL written into a ModelDeployment works for the operator and the servers.

The server runs from its own virtualenv under the cache, at the version of the
mlflow-skinny client the project's venv has: the full `mlflow` package's GraphQL
stack pins python-dateutil<3, which the Kubernetes client refuses, so the two
cannot share one environment (the client needs nothing of it).

As a command (`python -m modelrollout.devenv.registry --workdir DIR`) it runs in
the foreground until SIGTERM or Ctrl-C. Dev and test tooling, not the operator.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from modelrollout.devenv import network as net
from modelrollout.devenv.node import _cache_root
from modelrollout.devenv.ports import free_port
from modelrollout.devenv.processes import serve_until_signalled, stop_group

# Seconds for a cold start: the first start migrates the SQLite schema.
READY_TIMEOUT_SECONDS = 120.0
INSTALL_TIMEOUT_SECONDS = 900.0


class RegistryServerError(RuntimeError):
    pass


def client_version() -> str:
    """The mlflow-skinny version of this environment: the server runs the same one."""
    try:
        return importlib.metadata.version("mlflow-skinny")
    except importlib.metadata.PackageNotFoundError:
        raise RegistryServerError(
            "mlflow-skinny is not installed: pip install 'modelrollout[registry]'"
        ) from None


def server_binary(version: str | None = None) -> Path:
    """`mlflow` of a virtualenv with mlflow==version, made once per version (cached;
    a stamp marks a finished install, so an interrupted one is redone)."""
    version = version or client_version()
    root = _cache_root() / f"mlflow-server-{version}"
    venv, stamp = root / "venv", root / "installed"
    if stamp.exists():
        return venv / "bin" / "mlflow"
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test sessions may start at once
        if stamp.exists():
            return venv / "bin" / "mlflow"
        print(f"[registry] installing the MLflow server {version} into {venv}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        installed = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", f"mlflow=={version}"],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_SECONDS,
            check=False,
        )
        if installed.returncode != 0:
            raise RegistryServerError(
                f"pip install mlflow=={version} failed:\n{installed.stderr[-2000:]}"
            )
        stamp.touch()
    return venv / "bin" / "mlflow"


class RegistryServer:
    """`mlflow server` on 127.0.0.1 for `workdir` (its database and artifacts stay
    there, so a restarted server has every model it had)."""

    def __init__(self, workdir: Path, network: net.NodeNetwork | None = None) -> None:
        self.workdir = workdir
        self.network = network
        self.port = free_port()
        self.log_path = workdir / "mlflow.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._address = ""

    @property
    def url(self) -> str:
        """For this machine, and (with a network) for the cluster's pods as well."""
        return f"http://{self._address or f'127.0.0.1:{self.port}'}"

    def start(self) -> None:
        binary = server_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        artifacts = self.workdir / "artifacts"
        artifacts.mkdir(exist_ok=True)
        command = [
            str(binary), "server",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--backend-store-uri", f"sqlite:///{self.workdir / 'mlflow.db'}",
            "--artifacts-destination", str(artifacts),
            "--serve-artifacts",
            "--workers", "1",
        ]  # fmt: skip
        if self.network is not None:
            # Pods and the operator call it by the node network's host address,
            # which MLflow's host-header check must accept.
            hosts = [f"{h}:{self.port}" for h in (self.network.host_address, "127.0.0.1")]
            command += ["--allowed-hosts", ",".join(hosts)]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not self._healthy(f"http://127.0.0.1:{self.port}"):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise RegistryServerError(f"MLflow did not start on port {self.port}:\n{tail}")
            time.sleep(0.5)
        if self.network is not None:
            self._address = net.expose_here_too(self.network, self.port)

    def stop(self) -> None:
        if self.network is not None and self._address:
            net.unexpose(self.network, self.port)
            self._address = ""
        if self._process is not None and self._process.poll() is None:
            stop_group(self._process.pid, grace_seconds=10)
            self._process.wait(timeout=30)
        self._process = None

    @staticmethod
    def _healthy(url: str) -> bool:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:  # noqa: S310 - loopback
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def __enter__(self) -> RegistryServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    return serve_until_signalled(
        argv,
        prog="python -m modelrollout.devenv.registry",
        description="The local cluster's MLflow model registry, until stopped.",
        server=RegistryServer,
        announce=lambda it: f"MLFLOW_TRACKING_URI={it.url}",
    )


if __name__ == "__main__":
    sys.exit(main())
