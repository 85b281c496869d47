"""Process-group signalling, stopping and signal handling shared by the local
tools (the demo, the serving stack, the real node, the test fixtures), so each
stops what it started the same way."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from modelrollout.devenv.network import NodeNetwork

Server = TypeVar("Server")


def pid_alive(pid: int) -> bool:
    """Whether `pid` still runs; a zombie (exited, not yet reaped) counts as stopped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, just not ours to signal
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return not stat.read_text().split(") ")[-1].startswith("Z")
    return True


def signal_group(pid: int, signum: int) -> None:
    """Sends `signum` to the process group led by `pid`; a group already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def stop_group(pid: int, grace_seconds: float) -> None:
    """SIGTERM to the process group led by `pid`, then waits until the leader is
    gone (it may be stopping children of its own first); SIGKILL to the group if
    it outlives `grace_seconds`. Reaps the leader when it is our child."""
    signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        signal_group(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def stop_child(process: subprocess.Popen[bytes], grace_seconds: float) -> None:
    """SIGTERM to a child started without a group of its own, SIGKILL if it outlives
    `grace_seconds`; reaped either way."""
    process.terminate()
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def stop_on_signals() -> None:
    """SIGTERM (what `make demo-down` and CI send) unwinds like Ctrl-C, so the
    callers' finally blocks stop their children; a second signal cannot cut that
    clean-up short, since both are ignored from the first one on."""

    def handler(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def wait_for_signal() -> None:
    """Blocks until SIGTERM or SIGINT, once `stop_on_signals` is installed."""
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)


def serve_until_signalled(
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
    server: Callable[[Path, NodeNetwork | None], AbstractContextManager[Server]],
    announce: Callable[[Server], str],
) -> int:
    """The command of a local server (the registry, the records store): `--workdir
    DIR [--cluster NAME]`, runs until SIGTERM or Ctrl-C, and prints `announce(it)`
    (its address) once it is up."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--cluster", help="also reachable from this local cluster's pods")
    args = parser.parse_args(argv)
    stop_on_signals()
    network = None
    if args.cluster:
        from modelrollout.devenv.cluster import local_cluster

        network = local_cluster(args.cluster, with_images=False).network
    with server(args.workdir, network) as running:
        print(announce(running), flush=True)
        wait_for_signal()
    return 0
