"""Coalescing concurrent requests into one model call, without waiting for them.

scikit-learn spends most of a one-row predict on per-call overhead (input
validation, dispatch), so ten rows cost little more than one. Requests whose
bodies are decoded in the same event-loop turn are queued here and flushed by a
callback scheduled for the next turn: under load many arrive together and
share one predict; alone, a request waits one loop turn (microseconds). There
is no timer and no batch-size wait, so latency at low load is unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    def __init__(self, run: Callable[[Sequence[T]], list[R]], max_rows: int) -> None:
        self._run = run
        self._max_rows = max_rows
        self._pending: list[tuple[T, int, asyncio.Future[R]]] = []
        self._rows = 0
        self._scheduled = False

    async def submit(self, item: T, rows: int) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, rows, future))
        self._rows += rows
        if self._rows >= self._max_rows:
            self._flush()
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending, self._rows = self._pending, [], 0
        if not batch:
            return
        try:
            results = self._run([item for item, _, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                self._settle(batch[0][2], None, exc)
                return
            # One request's bad rows must not fail the others: retry each alone,
            # so every caller gets its own result or its own error.
            for item, _, future in batch:
                try:
                    self._settle(future, self._run([item])[0], None)
                except Exception as exc:
                    self._settle(future, None, exc)
            return
        for (_, _, future), result in zip(batch, results, strict=True):
            self._settle(future, result, None)

    @staticmethod
    def _settle(future: asyncio.Future[R], result: R | None, exc: BaseException | None) -> None:
        if future.done():  # the client went away and its handler was cancelled
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)  # type: ignore[arg-type]
