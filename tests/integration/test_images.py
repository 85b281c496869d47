"""`make images` (tools/images/build.sh) builds what a real node runs from this
machine alone: the project's image runs the CLI with no network as uid 10001, the
pause image's process exits 0 when its sandbox is stopped, the tarballs are what
`ctr images import` reads, and a second run with no input changed reuses it all."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from modelrollout import __version__
from modelrollout.devenv.images import (
    BUILD_SCRIPT,
    BuiltImages,
    docker_host,
    ensure_images,
    parse_env_file,
)
from support.waiting import wait_for

pytestmark = pytest.mark.integration

# Signals whose handlers the pause process must have installed (SigCgt bits).
SIGINT, SIGTERM, SIGCHLD = 2, 15, 17


@pytest.fixture(scope="module")
def images() -> BuiltImages:
    return ensure_images()


@pytest.fixture(scope="module")
def docker_env(images: BuiltImages) -> dict[str, str]:
    return {**os.environ, "DOCKER_HOST": docker_host()}


def docker(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    result = subprocess.run(
        ["docker", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


def inspect(env: dict[str, str], image: str) -> dict[str, object]:
    described: list[dict[str, object]] = json.loads(docker(env, "image", "inspect", image))
    return described[0]


def test_the_image_runs_the_cli_with_no_network(
    images: BuiltImages, docker_env: dict[str, str]
) -> None:
    run = ["run", "--rm", "--network=none", images.modelrollout_image]
    usage = docker(docker_env, *run, "--help")
    assert "serve" in usage
    assert "run" in usage
    assert docker(docker_env, *run, "--version") == f"modelrollout {__version__}"


def test_the_image_runs_as_uid_10001(images: BuiltImages, docker_env: dict[str, str]) -> None:
    config = inspect(docker_env, images.modelrollout_image)["Config"]
    assert isinstance(config, dict)
    assert config["User"] == "10001:10001"
    ids = docker(
        docker_env,
        *("run", "--rm", "--network=none", "--entrypoint", "sh", images.modelrollout_image),
        *("-c", "id -u; id -g"),
    )
    assert ids.split() == ["10001", "10001"]


def catches(pid: int, *signals: int) -> bool:
    """Whether the process has its own handlers for these signals installed."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    caught = int(next(line for line in status if line.startswith("SigCgt:")).split()[1], 16)
    return all(caught & (1 << (signal - 1)) for signal in signals)


@pytest.mark.parametrize("signal", ["TERM", "INT"])
def test_the_pause_process_exits_0_when_signalled(
    images: BuiltImages, docker_env: dict[str, str], signal: str
) -> None:
    container = docker(docker_env, "run", "-d", "--network=none", images.pause_image)
    try:
        pid = int(docker(docker_env, "inspect", "-f", "{{.State.Pid}}", container))
        # PID 1 of a namespace drops signals it has no handler for: signal it only
        # once its handlers are in place, or the test would race its start-up.
        wait_for(
            lambda: catches(pid, SIGINT, SIGTERM, SIGCHLD),
            timeout=30,
            what="the pause process to install its signal handlers",
        )
        docker(docker_env, "kill", "--signal", signal, container)
        assert docker(docker_env, "wait", container, timeout=30) == "0"
    finally:
        subprocess.run(["docker", "rm", "-f", container], env=docker_env, capture_output=True)


def test_the_pause_image_holds_the_static_binary_alone(
    images: BuiltImages, docker_env: dict[str, str]
) -> None:
    described = inspect(docker_env, images.pause_image)
    config, rootfs = described["Config"], described["RootFS"]
    assert isinstance(config, dict)
    assert isinstance(rootfs, dict)
    assert config["Entrypoint"] == ["/pause"]
    assert len(rootfs["Layers"]) == 1


@pytest.mark.parametrize("which", ["modelrollout", "pause"])
def test_the_tarballs_carry_the_tagged_image(images: BuiltImages, which: str) -> None:
    image, tar = {
        "modelrollout": (images.modelrollout_image, images.modelrollout_image_tar),
        "pause": (images.pause_image, images.pause_image_tar),
    }[which]
    with tarfile.open(tar) as archive:
        member = archive.extractfile("manifest.json")
        assert member is not None
        manifest = json.load(member)
    assert [entry["RepoTags"] for entry in manifest] == [[image]]


def test_a_second_run_with_no_change_reuses_every_image(images: BuiltImages) -> None:
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    # The output contract: the env file's path is all there is on stdout.
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert parse_env_file(Path(lines[0])) == images
    for part in ("base", "pause", "wheelhouse", "modelrollout"):
        assert f"[images] {part}: reused" in result.stderr
    for work in ("building", "downloading", "debootstrap", "loading", "importing"):
        assert work not in result.stderr


def docker_traces() -> set[str]:
    """Network devices and iptables chains a dockerd would add to the host."""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    traces = {line.split(":")[1].strip() for line in links.stdout.splitlines()}
    for table in ("filter", "nat"):
        rules = subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True)
        traces |= {line for line in rules.stdout.splitlines() if "DOCKER" in line}
    return {trace for trace in traces if "docker" in trace.lower()}


def test_the_private_dockerd_starts_detached_and_stops(tmp_path: Path) -> None:
    env = {**os.environ, "MODELROLLOUT_CACHE": str(tmp_path / "cache")}
    env.pop("DOCKER_HOST", None)
    script = ["bash", str(BUILD_SCRIPT)]
    before = docker_traces()
    # A daemon holding our stdout would keep this waiting for an EOF (the timeout).
    started = subprocess.run(
        [*script, "--docker-host"], env=env, capture_output=True, text=True, timeout=120
    )
    try:
        assert started.returncode == 0, started.stderr
        host = started.stdout.strip()
        assert host.startswith("unix:///")
        assert "starting a private dockerd" in started.stderr
        answer = docker({**env, "DOCKER_HOST": host}, "version", "--format", "{{.Server.Version}}")
        assert answer
        assert docker_traces() == before
    finally:
        stopped = subprocess.run(
            [*script, "--stop-daemon"], env=env, capture_output=True, text=True, timeout=120
        )
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in stopped.stderr
    assert not Path(host.removeprefix("unix://")).exists()
