"""An artifact store the local cluster's pods download models from, the way a
user's pods download them from an object store or a file server: over HTTP,
verified against the sha256 in the ModelDeployment (`modelserver.fetch`).

A plain file server (the standard library's) on 127.0.0.1, serving one directory,
forwarded to the pods and only to them (`network.expose_to_pods`). Each artifact
is published with the reference profile beside it (`<artifact>.profile.json`),
which the server fetches from the same place for drift monitoring.

Dev and test tooling, not the operator.
"""

from __future__ import annotations

import functools
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from modelrollout.devenv import network as net

PROFILE_SUFFIX = ".profile.json"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """One line per download on stderr would drown the demo's timeline."""


class ArtifactStore:
    """Serves `root` over HTTP to the pods of the cluster whose node network is `network`."""

    def __init__(self, root: Path, network: net.NodeNetwork) -> None:
        self.root = root.resolve()
        self.network = network
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._pod_address = ""

    @property
    def url(self) -> str:
        """The store's address as the pods reach it."""
        assert self._pod_address, "the artifact store is not started"
        return f"http://{self._pod_address}"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        handler = functools.partial(_QuietHandler, directory=str(self.root))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="artifact-store", daemon=True
        )
        self._thread.start()
        self._pod_address = net.expose_to_pods(self.network, self._server.server_address[1])

    def stop(self) -> None:
        if self._server is None:
            return
        net.unexpose(self.network, self._server.server_address[1])
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None

    def publish(self, artifact: Path) -> str:
        """The URL the pods download `artifact` from; it and its profile are copied
        into the store first unless they are in it already (each copy replaces the
        file at once: a pod downloading meanwhile gets the old file or the new one)."""
        artifact = artifact.resolve()
        if not artifact.is_relative_to(self.root):
            for source in (artifact, artifact.with_name(artifact.name + PROFILE_SUFFIX)):
                partial = self.root / f".{source.name}.partial"
                shutil.copyfile(source, partial)
                partial.replace(self.root / source.name)
            artifact = self.root / artifact.name
        return f"{self.url}/{artifact.relative_to(self.root).as_posix()}"

    def __enter__(self) -> ArtifactStore:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
