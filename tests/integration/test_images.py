"""`make images` (tools/images/build.sh) builds what a real node runs from this
machine alone: the project's two images (the Dockerfile's targets) run the CLI
with no network as uid 10001, the operator image without any ML library nor the
developer's environment, the model-server image with them and `serve` as its
command; the pause image's process exits 0 when its sandbox is stopped, the
tarballs are what `ctr images import` reads, and a second run with no input
changed reuses it all."""

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


PROJECT_IMAGES = ["operator", "modelserver"]
ML_MODULES = ["numpy", "scipy", "sklearn", "pandas", "skops", "palmerpenguins", "onnxruntime"]


def project_image(images: BuiltImages, which: str) -> str:
    return {"operator": images.operator_image, "modelserver": images.modelserver_image}[which]


def python_in(env: dict[str, str], image: str, script: str, *args: str) -> str:
    run = ["run", "--rm", "--network=none", "--entrypoint", "python", image]
    return docker(env, *run, "-c", script, *args)


FIND = "import sys, importlib.util as u; print([m for m in sys.argv[1:] if u.find_spec(m)])"


@pytest.mark.parametrize("which", PROJECT_IMAGES)
def test_the_images_run_the_cli_with_no_network(
    images: BuiltImages, docker_env: dict[str, str], which: str
) -> None:
    run = ["run", "--rm", "--network=none", project_image(images, which)]
    usage = docker(docker_env, *run, "--help")
    assert "serve" in usage
    assert "run" in usage
    assert docker(docker_env, *run, "--version") == f"modelrollout {__version__}"


@pytest.mark.parametrize("which", PROJECT_IMAGES)
def test_the_images_run_as_uid_10001(
    images: BuiltImages, docker_env: dict[str, str], which: str
) -> None:
    image = project_image(images, which)
    config = inspect(docker_env, image)["Config"]
    assert isinstance(config, dict)
    assert config["User"] == "10001:10001"
    ids = docker(
        docker_env,
        *("run", "--rm", "--network=none", "--entrypoint", "sh", image),
        *("-c", "id -u; id -g"),
    )
    assert ids.split() == ["10001", "10001"]


@pytest.mark.parametrize("which", PROJECT_IMAGES)
def test_neither_image_carries_the_developer_environment(
    images: BuiltImages, docker_env: dict[str, str], which: str
) -> None:
    image = project_image(images, which)
    found = python_in(docker_env, image, FIND, "modelrollout.devenv", "modelrollout.handlers")
    assert found == "['modelrollout.handlers']"


def test_the_operator_image_has_no_ml_library(
    images: BuiltImages, docker_env: dict[str, str]
) -> None:
    config = inspect(docker_env, images.operator_image)["Config"]
    assert isinstance(config, dict)
    assert config["Entrypoint"] == ["modelrollout"]
    assert config["Cmd"] == ["run"]
    assert python_in(docker_env, images.operator_image, FIND, *ML_MODULES) == "[]"
    # Every module of the operator's package imports there (what the CLI and the
    # handlers reach lazily too, such as the Prometheus client), loading none.
    every_module = (
        "import importlib, pkgutil, sys, modelrollout\n"
        "for module in pkgutil.walk_packages(modelrollout.__path__, 'modelrollout.'):\n"
        "    importlib.import_module(module.name)\n"
        "from prometheus_api_client import PrometheusConnect\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:])))\n"
    )
    assert python_in(docker_env, images.operator_image, every_module, *ML_MODULES) == "[]"
    # `serve` there fails at once, in one line saying where the model server is.
    result = subprocess.run(
        ["docker", "run", "--rm", "--network=none", images.operator_image, "serve"],
        env=docker_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "the model server's dependencies are not installed" in result.stderr
    assert "Dockerfile target `modelserver`" in result.stderr


def test_the_modelserver_image_serves_by_default(
    images: BuiltImages, docker_env: dict[str, str]
) -> None:
    config = inspect(docker_env, images.modelserver_image)["Config"]
    assert isinstance(config, dict)
    assert config["Entrypoint"] == ["modelrollout"]
    assert config["Cmd"] == ["serve"]
    assert "8080/tcp" in config["ExposedPorts"]
    found = python_in(docker_env, images.modelserver_image, FIND, *ML_MODULES)
    assert found == str(ML_MODULES)


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


@pytest.mark.parametrize("which", [*PROJECT_IMAGES, "pause"])
def test_the_tarballs_carry_the_tagged_image(images: BuiltImages, which: str) -> None:
    image, tar = {
        "operator": (images.operator_image, images.operator_image_tar),
        "modelserver": (images.modelserver_image, images.modelserver_image_tar),
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
    for part in ("base", "pause", "wheelhouse", "operator", "modelserver"):
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


def test_the_modelserver_image_loads_the_libraries_users_models_need(
    images: BuiltImages, docker_env: dict[str, str]
) -> None:
    """LightGBM links the system OpenMP runtime; an image without it would refuse
    every LightGBM model at start-up."""
    script = "import lightgbm, pandas, pyarrow; print(lightgbm.__version__)"
    assert python_in(docker_env, images.modelserver_image, script)
