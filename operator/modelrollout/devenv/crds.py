"""`make crds`: the CRD files, regenerated from the API models.

crds/modeldeployment.yaml is generated (modelrollout.api.crd); crds/kopf-peering.yaml
is Kopf's, written by hand. The Helm chart must ship both in its own crds/
directory, byte for byte, so this writes the generated file and then copies
every crds/*.yaml into the chart (removing one crds/ no longer has).
tests/unit/api/test_crd_generation.py compares the files on disk with
`expected_files()` and names the stale ones.

    python -m modelrollout.devenv.crds     # what `make crds` runs
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

from modelrollout.api.crd import crd_yaml
from modelrollout.devenv.tools import REPO_ROOT

CRD_DIR: Final = REPO_ROOT / "crds"
CHART_CRD_DIR: Final = REPO_ROOT / "charts" / "modelrollout" / "crds"
GENERATED_CRD: Final = CRD_DIR / "modeldeployment.yaml"


def expected_files() -> dict[Path, str]:
    """Every CRD file as `make crds` leaves it: path to content."""
    top = {path: path.read_text() for path in sorted(CRD_DIR.glob("*.yaml"))}
    top[GENERATED_CRD] = crd_yaml()
    return top | {CHART_CRD_DIR / path.name: text for path, text in top.items()}


def stale_files() -> list[Path]:
    """Files that differ from `expected_files()`, are missing, or should not be there."""
    expected = expected_files()
    stale = [path for path, text in expected.items() if _read(path) != text]
    extra = [path for path in sorted(CHART_CRD_DIR.glob("*.yaml")) if path not in expected]
    return stale + extra


def write() -> list[Path]:
    """Bring every CRD file up to date; returns the paths changed."""
    changed = stale_files()
    expected = expected_files()
    CHART_CRD_DIR.mkdir(parents=True, exist_ok=True)
    for path in changed:
        if path in expected:
            path.write_text(expected[path])
        else:
            path.unlink()
    return changed


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def main() -> int:
    changed = write()
    for path in changed:
        print(f"{path.relative_to(REPO_ROOT)}: {'written' if path.exists() else 'removed'}")
    if not changed:
        print("crds/ and the chart's copies are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
