"""Reading an operator's own /metrics in tests: one series' value from the
Prometheus text format."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def sample(text: str, metric: str, /, **labels: str) -> float:
    """The value of one series in Prometheus text format (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == metric and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0
