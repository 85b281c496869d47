"""The drift statistics against values computed independently (by hand and by scipy)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from modelserver.stats import chi2_sf, chi_square_pvalue, psi

pytestmark = pytest.mark.unit


def test_psi_matches_the_formula_worked_by_hand() -> None:
    # Two bins swap a quarter of the mass: (0.5-0.25)ln2 + (0.25-0.5)ln(1/2) = 0.5 ln 2.
    value = psi(np.array([0.25, 0.25, 0.5]), np.array([0.5, 0.25, 0.25]))
    assert value == pytest.approx(0.5 * math.log(2))


def test_psi_is_zero_for_identical_distributions_and_symmetric() -> None:
    a = np.array([0.1, 0.2, 0.3, 0.4])
    b = np.array([0.4, 0.3, 0.2, 0.1])
    assert psi(a, a) == 0.0
    assert psi(a, b) == pytest.approx(psi(b, a))


def test_psi_floors_empty_bins_instead_of_going_infinite() -> None:
    # 5% of rows in a bin training never saw (an unseen category).
    value = psi(np.array([0.5, 0.5, 0.0]), np.array([0.475, 0.475, 0.05]))
    expected = 2 * (-0.025) * math.log(0.475 / 0.5) + (0.05 - 1e-4) * math.log(0.05 / 1e-4)
    assert value == pytest.approx(expected)
    assert 0.25 < value < 1.0


@pytest.mark.parametrize("dof", [1, 2, 5, 9, 30])
@pytest.mark.parametrize("x", [0.01, 0.5, 1.0, 3.0, 9.0, 20.0, 60.0])
def test_chi2_survival_function_matches_scipy(x: float, dof: int) -> None:
    assert chi2_sf(x, dof) == pytest.approx(scipy_stats.chi2.sf(x, dof), rel=1e-9, abs=1e-14)


def test_goodness_of_fit_pvalue_matches_scipy_chisquare() -> None:
    reference = np.array([0.1, 0.2, 0.3, 0.4])
    counts = np.array([14, 18, 33, 35])
    expected = scipy_stats.chisquare(counts, reference * counts.sum()).pvalue
    assert chi_square_pvalue(reference, counts) == pytest.approx(expected, rel=1e-9)


def test_observations_in_a_bin_training_never_saw_give_pvalue_zero() -> None:
    assert chi_square_pvalue(np.array([0.5, 0.5, 0.0]), np.array([10, 10, 1])) == 0.0
    # An empty zero-share bin is simply left out of the test.
    expected = scipy_stats.chisquare([12, 8], [10, 10]).pvalue
    assert chi_square_pvalue(np.array([0.5, 0.5, 0.0]), np.array([12, 8, 0])) == pytest.approx(
        expected
    )
