"""Replica-ratio arithmetic: how many canary pods a weight needs, and what stays."""

from __future__ import annotations

import pytest

from modelrollout.rollout.weights import canary_replicas, effective_weight, stable_replicas

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("replicas", "weight", "expected"),
    [
        (4, 0, 0),
        (4, 10, 1),  # at least one pod once the weight is above 0
        (4, 25, 1),
        (4, 50, 2),
        (4, 60, 3),  # rounds up: never less canary than asked
        (4, 100, 4),
        (10, 5, 1),
        (10, 33, 4),
        (1, 1, 1),
        (0, 50, 0),
    ],
)
def test_canary_replicas(replicas: int, weight: int, expected: int) -> None:
    assert canary_replicas(replicas, weight) == expected


@pytest.mark.parametrize(
    ("replicas", "wanted", "available", "expected"),
    [
        (4, 2, 0, 4),  # nothing replaces stable pods yet: keep them all
        (4, 2, 1, 3),
        (4, 2, 2, 2),
        (4, 2, 3, 2),  # more canary pods than wanted do not shrink stable further
        (4, 4, 4, 0),
    ],
)
def test_stable_shrinks_only_by_available_canary_pods(
    replicas: int, wanted: int, available: int, expected: int
) -> None:
    assert stable_replicas(replicas, wanted, available) == expected


@pytest.mark.parametrize(
    ("replicas", "wanted", "available", "budget", "expected"),
    [
        (8, 2, 1, 3, 6),  # HPA 4 -> 8 at 25%: straight to its share, no surge to 7
        (8, 2, 1, 6, 6),  # ... and it stays there while the 2nd canary pod starts
        (4, 1, 2, 6, 3),  # HPA 8 -> 4: down to its share at once
        (4, 1, 0, 3, 3),  # a canary pod that stopped being ready: no stable pod added
        (4, 1, 0, 4, 4),  # a superseded canary's ready pod going away: taken back (3 + 1)
        (4, 1, 1, 4, 3),  # the new canary up: the stable gives one back
        (10, 5, 0, 12, 10),  # a budget above the total never raises it above the total
    ],
)
def test_an_autoscaled_total_is_split_without_a_surge_given_back(
    replicas: int, wanted: int, available: int, budget: int, expected: int
) -> None:
    assert stable_replicas(replicas, wanted, available, budget) == expected


@pytest.mark.parametrize(
    ("canary_ready", "stable_ready", "expected"),
    [(0, 0, 0), (1, 3, 25), (1, 4, 20), (2, 2, 50), (3, 0, 100)],
)
def test_effective_weight(canary_ready: int, stable_ready: int, expected: int) -> None:
    assert effective_weight(canary_ready, stable_ready) == expected
