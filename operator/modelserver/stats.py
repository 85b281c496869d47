"""The drift statistics, in plain numpy and math.

Kept free of scipy so the serving process does not import it for this, and so
the formulas are visible: the tests check them against independent
computations (scipy's chi-square distribution, PSI written out by hand).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

# Shares are floored at this before taking logarithms: an empty bin would
# otherwise make PSI infinite. 1e-4 is the customary floor; it keeps a bin that
# went from 0 to 5% (e.g. unseen categories) at a large but finite PSI (~0.4).
PSI_EPSILON = 1e-4


def psi(reference: npt.NDArray[np.float64], actual: npt.NDArray[np.float64]) -> float:
    """Population stability index: sum over bins of (a - r) * ln(a / r), shares floored."""
    ref = np.maximum(reference, PSI_EPSILON)
    act = np.maximum(actual, PSI_EPSILON)
    return float(np.sum((act - ref) * np.log(act / ref)))


def chi_square_pvalue(reference: npt.NDArray[np.float64], counts: npt.NDArray[np.int64]) -> float:
    """P-value of Pearson's goodness-of-fit test of observed counts against reference shares.

    Bins with zero reference share are dropped from the statistic, unless they
    hold observations: then the window cannot come from the reference and the
    p-value is 0.
    """
    total = float(counts.sum())
    if total <= 0:
        return 1.0
    if np.any((reference <= 0) & (counts > 0)):
        return 0.0
    mask = reference > 0
    expected = reference[mask] * total
    statistic = float(np.sum((counts[mask] - expected) ** 2 / expected))
    dof = int(mask.sum()) - 1
    if dof < 1:
        return 1.0
    return chi2_sf(statistic, dof)


def chi2_sf(x: float, dof: int) -> float:
    """Survival function of the chi-square distribution: Q(dof/2, x/2)."""
    if x <= 0:
        return 1.0
    return _gamma_q(dof / 2.0, x / 2.0)


def _gamma_q(a: float, x: float) -> float:
    """Regularized upper incomplete gamma function (series or continued fraction)."""
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        # Series for P(a, x), then Q = 1 - P.
        term = total = 1.0 / a
        denominator = a
        for _ in range(1000):
            denominator += 1.0
            term *= x / denominator
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    # Lentz's continued fraction for Q(a, x).
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return min(1.0, math.exp(log_prefix) * h)
