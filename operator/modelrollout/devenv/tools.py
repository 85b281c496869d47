"""Locates the control plane's binaries (and the tests' kstatus), building them on a
cold machine.

The build itself is `tools/cluster/build.sh` (Go modules pinned in the repo, a
cache outside it keyed by version); this module only runs it and reads the
binary directory it prints, so the Makefile and Python share one build path.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO_ROOT / "tools" / "cluster" / "build.sh"
VERSIONS_FILE = REPO_ROOT / "tools" / "cluster" / "versions.env"


class ToolsError(RuntimeError):
    """The control plane's binaries could not be found or built."""


@dataclass(frozen=True)
class ClusterTools:
    bin_dir: Path

    def path(self, name: str) -> Path:
        binary = self.bin_dir / name
        if not binary.exists():
            raise ToolsError(f"{binary} is missing; rebuild with `bash {BUILD_SCRIPT}`")
        return binary

    @property
    def kubectl(self) -> Path:
        return self.path("kubectl")

    @property
    def kwokctl(self) -> Path:
        return self.path("kwokctl")

    @property
    def helm(self) -> Path:
        return self.path("helm")

    @property
    def prometheus(self) -> Path:
        """Prometheus 3 with Kubernetes service discovery (Debian's 2.42 lacks it)."""
        return self.path("prometheus")

    def gateway_api_crds(self, channel: str) -> list[Path]:
        """The Gateway API CRDs of `channel` (standard or experimental), at
        GATEWAY_API_VERSION: every CustomResourceDefinition file, not the
        release's admission policy against downgrades (a separate install)."""
        directory = self.bin_dir / "gateway-api" / channel
        found = sorted(p for p in directory.glob("*.yaml") if "_vap_" not in p.name)
        if not found:
            raise ToolsError(
                f"no Gateway API CRDs in {directory}; rebuild with `bash {BUILD_SCRIPT}`"
            )
        return found

    @property
    def kstatus(self) -> Path:
        """tools/kstatus: Flux's health rules (cli-utils kstatus) as a command."""
        return self.path("kstatus")


def pinned_versions() -> dict[str, str]:
    """The versions in tools/cluster/versions.env, e.g. KUBERNETES_VERSION."""
    versions: dict[str, str] = {}
    for line in VERSIONS_FILE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            versions[key.strip()] = value.strip()
    return versions


def ensure_tools() -> ClusterTools:
    """Builds what is missing (progress goes to stderr) and returns the binaries."""
    if not BUILD_SCRIPT.exists():
        raise ToolsError(f"{BUILD_SCRIPT} not found: the local cluster runs from a source checkout")
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
        check=False,
    )
    if result.returncode != 0:
        raise ToolsError(f"building the cluster binaries failed (exit {result.returncode})")
    lines = result.stdout.strip().splitlines()
    if not lines:
        raise ToolsError(f"{BUILD_SCRIPT} printed no binary directory")
    return ClusterTools(bin_dir=Path(lines[-1]))
