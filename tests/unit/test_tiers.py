"""The tier check (tests/support/tiers.py) refuses a collection with a test in no
tier or in two, naming it, even when `-m` would have deselected that test."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.unit

MARKERS = """
[pytest]
markers =
    unit: u
    integration: i
    e2e: e
"""


@pytest.fixture
def plugged(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(MARKERS)
    return pytester


def test_tests_with_one_tier_each_run(plugged: pytest.Pytester) -> None:
    plugged.makepyfile(
        test_ok="""
        import pytest
        pytestmark = pytest.mark.unit

        def test_a(): pass

        @pytest.mark.parametrize("n", [1, 2])
        def test_b(n): pass
        """
    )
    result = plugged.runpytest("-p", "support.tiers", "-m", "unit")
    result.assert_outcomes(passed=3)


def test_a_test_without_a_tier_fails_every_tiers_run_and_is_named(
    plugged: pytest.Pytester,
) -> None:
    plugged.makepyfile(
        test_mixed="""
        import pytest

        @pytest.mark.unit
        def test_marked(): pass

        def test_forgotten(): pass
        """
    )
    for tier in ("unit", "integration", "e2e"):
        result = plugged.runpytest("-p", "support.tiers", "-m", tier)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(
            [
                "*1 collected test(s) need exactly one tier marker (unit, integration or e2e)*",
                "*test_mixed.py::test_forgotten: no tier marker",
            ]
        )
        assert "test_marked" not in result.stderr.str()


def test_a_test_in_two_tiers_is_refused(plugged: pytest.Pytester) -> None:
    plugged.makepyfile(
        test_twice="""
        import pytest
        pytestmark = pytest.mark.integration

        @pytest.mark.unit
        def test_both(): pass
        """
    )
    result = plugged.runpytest("-p", "support.tiers")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_twice.py::test_both: 2 tier markers (integration, unit)"])


def test_the_suite_runs_with_the_check(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.has_plugin("support.tiers")
