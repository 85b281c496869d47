"""How the decision core writes moments in messages (no clock is read here: time
comes in as `now`)."""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime


def stamp(moment: datetime) -> str:
    """RFC 3339 in UTC to the second, for messages that must not change between plans."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
