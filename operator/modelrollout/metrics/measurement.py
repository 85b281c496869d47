"""One query's outcome, and the Protocol every metric provider implements.

A value, no data and a query error are three different facts and are never
confused (docs/architecture.md, "Adding a metric provider"): no data (nothing
matched, NaN, an infinity) is what onNoData decides about; an error (Prometheus
down, bad PromQL, a timeout, an ambiguous answer) counts towards
consecutiveErrorLimit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol

MeasurementKind = Literal["value", "nodata", "error"]


@dataclass(frozen=True)
class Measurement:
    kind: MeasurementKind
    value: float | None = None
    message: str = ""

    @classmethod
    def of(cls, value: float) -> Measurement:
        """A number, where NaN and infinities are no data: no threshold can judge them."""
        if math.isnan(value):
            return cls("nodata", message="the query returned NaN (e.g. 0/0: no traffic)")
        if math.isinf(value):
            return cls("nodata", message=f"the query returned {value} (e.g. x/0)")
        return cls("value", value)

    @classmethod
    def no_data(cls, message: str) -> Measurement:
        return cls("nodata", message=message)

    @classmethod
    def error(cls, message: str) -> Measurement:
        return cls("error", message=message)


class MetricProvider(Protocol):
    """Runs one query and says what came back. Never raises for a failed query:
    failures are Measurement.error, so one bad metric cannot stop the others."""

    def measure(self, query: str) -> Measurement: ...

    def close(self) -> None: ...
