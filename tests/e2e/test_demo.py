"""`make demo` plays its whole story on a cluster of its own, and `make demo-down`
leaves nothing running: the README's main command, run as users run it (only
its state directory and cluster name are moved out of a user's demo's way)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelrollout.devenv.cluster import DEFAULT_WORKDIR
from modelrollout.devenv.processes import pid_alive
from support.procs import pids_mentioning

pytestmark = pytest.mark.e2e

# Cold model training and cluster start included; a stage that hangs fails sooner.
DEMO_TIMEOUT_SECONDS = 900


@pytest.fixture
def demo_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "MODELROLLOUT_DEMO_DIR": str(tmp_path / "demo"),
        "MODELROLLOUT_DEMO_CLUSTER": f"modelrollout-demo-test-{os.getpid()}",
    }
    yield env
    # Whatever happened, nothing of the demo outlives the test.
    subprocess.run(
        [sys.executable, "-m", "modelrollout.devenv.demo", "down"],
        env=env, capture_output=True, check=False, timeout=300,
    )  # fmt: skip


def test_the_demo_promotes_v2_rolls_back_v3_retrains_a_rotting_model_and_stops_cleanly(
    demo_env: dict[str, str],
) -> None:
    state = Path(demo_env["MODELROLLOUT_DEMO_DIR"])
    played = subprocess.run(
        [sys.executable, "-m", "modelrollout.devenv.demo"],
        env=demo_env, capture_output=True, text=True, check=False, timeout=DEMO_TIMEOUT_SECONDS,
    )  # fmt: skip
    told = played.stdout
    print(told[-6000:])
    assert played.returncode == 0, played.stderr[-6000:]
    assert "v1: first deployment" in told
    assert "v2 promoted on its measurements" in told
    rolled_back = re.search(
        r"v3 rolled back automatically: (\S+) = ([0-9.]+) \((max [0-9.]+)\); all traffic on v2",
        told,
    )
    assert rolled_back, "the timeline does not name what condemned v3"
    assert rolled_back.group(1) == "feature-drift" and rolled_back.group(3) == "max 0.25"
    assert float(rolled_back.group(2)) > 0.25
    assert "summary: stable v2" in told
    # The loop: the accuracy drift, one Job that wins on held-out rows, the promotion.
    assert re.search(r"drift: live-accuracy = 0\.[0-9]+ \(min 0\.9\)", told), told[-3000:]
    assert re.search(r"Job \S+: Accepted: accepted", told), told[-3000:]
    retrained = re.search(
        r"diagnosis v2 \(retrained\) serves all traffic: accuracy ([0-9.]+) -> ([0-9.]+)", told
    )
    assert retrained and float(retrained.group(2)) > float(retrained.group(1)), told[-3000:]
    assert "export KUBECONFIG=" in told and "make demo-down" in told
    pids = [int((state / name).read_text()) for name in ("operator.pid", "stack.pid")]

    down = subprocess.run(
        [sys.executable, "-m", "modelrollout.devenv.demo", "down"],
        env=demo_env, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert down.returncode == 0, down.stderr
    assert not [pid for pid in pids if pid_alive(pid)], "the operator or the stack still runs"
    assert not pids_mentioning(str(state)), "model servers or Prometheus still run"
    cluster = demo_env["MODELROLLOUT_DEMO_CLUSTER"]
    assert not (DEFAULT_WORKDIR / "clusters" / cluster).exists(), "the demo's cluster is left"
    assert not pids_mentioning(f"clusters/{cluster}/"), "control plane processes are left"
