"""Process-group signalling and liveness checks shared by the local tools (the
demo, the pod runner, the test fixtures), so each stops what it started the same way."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


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
