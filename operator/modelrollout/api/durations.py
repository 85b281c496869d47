"""Go-style durations ("30s", "1m30s", "500ms") as the CRD accepts them.

The CRD validates the same pattern (generated from the models' fields that use
it), so the API server rejects a malformed duration before the operator sees it;
this parser is the single reading of it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

DURATION_PATTERN: Final = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_WHOLE = re.compile(DURATION_PATTERN)
_SECONDS_PER_UNIT: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# Ages on the command line (`prune-registry --keep-younger-than 30d`) count in days too.
_AGE = re.compile(r"^([0-9]+(\.[0-9]+)?(d|h|m|s))+$")
_AGE_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(d|h|m|s)")


def parse_duration(text: str) -> float:
    """Seconds in a duration such as "1m30s"; ValueError says what is wrong."""
    if not _WHOLE.fullmatch(text):
        raise ValueError(
            f"{text!r} is not a duration: use a number with a unit ms, s, m or h, "
            'e.g. "500ms", "30s", "1m30s"'
        )
    return sum(float(number) * _SECONDS_PER_UNIT[unit] for number, unit in _PART.findall(text))


def parse_age(text: str) -> timedelta:
    """An age such as "30d", "12h", "1d12h" or "90m"; ValueError says what is wrong."""
    if not _AGE.fullmatch(text):
        raise ValueError(
            f"{text!r} is not a duration: use numbers with a unit d, h, m or s, "
            'e.g. "30d", "12h", "1d12h"'
        )
    return timedelta(
        seconds=sum(float(n) * _SECONDS_PER_UNIT[unit] for n, unit in _AGE_PART.findall(text))
    )


def format_seconds(seconds: float) -> str:
    """A short human form for messages ("90s", "2m", "1.5s")."""
    if seconds >= 120 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:.1f}s"
