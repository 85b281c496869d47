"""Waiting for a condition with a deadline: tests poll what a user would watch,
they never sleep a fixed time and hope."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


class WaitTimeoutError(AssertionError):
    pass


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.25,
) -> T:
    """Calls `probe` until it returns something truthy; fails naming `what` and the
    last value seen when `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise WaitTimeoutError(
                f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}"
            )
        time.sleep(interval)


@contextmanager
def sampled(probe: Callable[[], T], interval: float = 0.2) -> Iterator[list[T]]:
    """Every value `probe` returned, polled in the background while the block runs:
    for asserting what never happened (a selector that never named a revision, a
    Deployment that never shrank)."""
    values: list[T] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def poll() -> None:
        while not done.wait(interval):
            try:
                values.append(probe())
            except Exception as error:  # the block's assertions would read a stale list
                failures.append(error)
                return

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield values
    finally:
        done.set()
        thread.join(timeout=10)
    if failures:
        raise AssertionError(f"sampling stopped: {failures[0]!r}") from failures[0]
