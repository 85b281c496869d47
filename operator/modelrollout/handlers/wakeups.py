"""Wakes an object's reconcile loop when something it depends on changes.

Each ModelDeployment's daemon sleeps until its core's next deadline; watch events
(of the object itself and of the Deployments it owns) cut that sleep short. This
keeps the operator event-driven: no object is polled faster than its own timers.
"""

from __future__ import annotations

import asyncio

from modelrollout.api.ownership import ObjectKey


class Wakeups:
    def __init__(self) -> None:
        self._events: dict[ObjectKey, asyncio.Event] = {}

    def register(self, key: ObjectKey) -> asyncio.Event:
        return self._events.setdefault(key, asyncio.Event())

    def forget(self, key: ObjectKey) -> None:
        self._events.pop(key, None)

    def wake(self, key: ObjectKey) -> None:
        event = self._events.get(key)
        if event is not None:
            event.set()

    async def sleep(self, key: ObjectKey, seconds: float) -> bool:
        """Sleeps up to `seconds`; True when woken by an event rather than the clock."""
        event = self.register(key)
        try:
            await asyncio.wait_for(event.wait(), timeout=max(seconds, 0.0))
        except TimeoutError:
            return False
        finally:
            event.clear()
        return True
