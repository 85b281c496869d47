"""Every collected test belongs to exactly one tier: unit, integration or e2e.

`make test-unit`, `make test-integration` and `make test-e2e` select tests with
`-m <tier>`, so a test without a tier marker runs in none of them and one with
two runs twice; either would go unnoticed. This plugin (registered by
tests/conftest.py) refuses such a collection, naming each test, before `-m`
deselects anything: every tier's run fails, not only a whole `make test`.
"""

from __future__ import annotations

import pytest

TIERS = ("unit", "integration", "e2e")


def tier_problem(item: pytest.Item) -> str | None:
    """What is wrong with the test's tier markers, or None when it has exactly one."""
    tiers = sorted({mark.name for mark in item.iter_markers() if mark.name in TIERS})
    if not tiers:
        return "no tier marker"
    if len(tiers) > 1:
        return f"{len(tiers)} tier markers ({', '.join(tiers)})"
    return None


# tryfirst: pytest's own hook deselects by `-m`, and a test it dropped is
# exactly the test this check exists to catch.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    problems = [
        f"  {item.nodeid}: {problem}"
        for item in items
        if (problem := tier_problem(item)) is not None
    ]
    if problems:
        raise pytest.UsageError(
            f"{len(problems)} collected test(s) need exactly one tier marker "
            f"({', '.join(TIERS[:-1])} or {TIERS[-1]}): `make test-<tier>` runs skip a "
            "test without one and repeat a test with two:\n"
            + "\n".join(problems)
            + "\nMark each module (`pytestmark = pytest.mark.unit`) or test "
            "(`@pytest.mark.integration`) with one tier."
        )
