"""Finds (or builds, on a cold machine) the container images a real node runs.

No image registry is reachable here, so a real kubelet's containerd can only run
images built on this machine and imported from tarballs: the project's two images
(the operator, the model server: the Dockerfile's targets), a pause image for the
pod sandboxes, and the Debian base they stand on. The build
is `tools/images/build.sh` (cached outside the repo, keyed by the digest of each
image's inputs); this module only runs it and reads the env file it prints, so
`make images` and Python share one build path and one output contract.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO_ROOT / "tools" / "images" / "build.sh"

# The env file's keys, in the order build.sh writes them; others code against them.
ENV_KEYS = (
    "OPERATOR_IMAGE",
    "OPERATOR_IMAGE_TAR",
    "MODELSERVER_IMAGE",
    "MODELSERVER_IMAGE_TAR",
    "PAUSE_IMAGE",
    "PAUSE_IMAGE_TAR",
    "BASE_IMAGE",
)


class ImagesError(RuntimeError):
    """The images could not be built, or build.sh's output broke its contract."""


@dataclass(frozen=True)
class BuiltImages:
    """Image references as the local Docker daemon knows them, and the `docker
    save` tarballs to hand to `ctr -n k8s.io images import`."""

    # `modelrollout run` and the kubectl plugin's commands, no ML libraries (the
    # Helm chart's operator pod).
    operator_image: str
    operator_image_tar: Path
    # The reference model server and the ML stack (model-server pods, and the
    # tests' small Python pods).
    modelserver_image: str
    modelserver_image_tar: Path
    pause_image: str
    pause_image_tar: Path
    base_image: str


def parse_env_file(path: Path) -> BuiltImages:
    """Reads build.sh's env file: exactly the ENV_KEYS lines, tarballs that exist."""
    try:
        text = path.read_text()
    except OSError as error:
        raise ImagesError(f"cannot read the images env file {path}: {error}") from error
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        key, sep, value = line.partition("=")
        if not sep or key not in ENV_KEYS or key in values or not value:
            raise ImagesError(f"{path}:{number}: unexpected line {line!r}")
        values[key] = value
    missing = [key for key in ENV_KEYS if key not in values]
    if missing:
        raise ImagesError(f"{path} lacks {', '.join(missing)}")
    images = BuiltImages(
        operator_image=values["OPERATOR_IMAGE"],
        operator_image_tar=Path(values["OPERATOR_IMAGE_TAR"]),
        modelserver_image=values["MODELSERVER_IMAGE"],
        modelserver_image_tar=Path(values["MODELSERVER_IMAGE_TAR"]),
        pause_image=values["PAUSE_IMAGE"],
        pause_image_tar=Path(values["PAUSE_IMAGE_TAR"]),
        base_image=values["BASE_IMAGE"],
    )
    for tar in (images.operator_image_tar, images.modelserver_image_tar, images.pause_image_tar):
        if not tar.is_file():
            raise ImagesError(f"{path} names {tar}, which does not exist; run `make images`")
    return images


def _run_build_script(*args: str) -> str:
    """Runs build.sh, passing its progress (stderr) through, and returns its last
    stdout line. A failure's message carries the script's last progress lines."""
    if not BUILD_SCRIPT.exists():
        raise ImagesError(f"{BUILD_SCRIPT} not found: the images build from a source checkout")
    tail: deque[str] = deque(maxlen=15)
    # stdout to a file: the script prints one line there, but a pipe read only
    # after stderr's end could still deadlock if that ever changed.
    with tempfile.TemporaryFile(mode="w+") as stdout:
        with subprocess.Popen(
            ["bash", str(BUILD_SCRIPT), *args],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        ) as process:
            assert process.stderr is not None
            for line in process.stderr:
                sys.stderr.write(line)
                tail.append(line.rstrip("\n"))
        if process.returncode != 0:
            command = " ".join(["bash", str(BUILD_SCRIPT), *args])
            detail = "\n".join(tail)
            raise ImagesError(f"`{command}` failed (exit {process.returncode}):\n{detail}")
        stdout.seek(0)
        lines = stdout.read().strip().splitlines()
    if not lines:
        raise ImagesError(f"{BUILD_SCRIPT} printed nothing on stdout")
    return lines[-1]


def ensure_images() -> BuiltImages:
    """Builds what is missing or stale (progress goes to stderr) and returns the images."""
    return parse_env_file(Path(_run_build_script()))


def docker_host() -> str:
    """The DOCKER_HOST the images live in (the private dockerd build.sh starts when
    no other daemon answers), for running them with the docker CLI."""
    return _run_build_script("--docker-host")


def stop_daemon() -> None:
    """Stops the private dockerd, if build.sh started one; the images stay cached."""
    _run_build_script("--stop-daemon")
