"""The Wald test and interval of an estimate from its SE and df, in one place for every model.

t with the given denominator df, z where the df is infinite (asymptotic inference, labelled z);
the same function serves single fits (floats) and batched fits (arrays of outcomes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Wald:
    """A Wald test: statistic, its reference distribution, two-sided p and confidence interval.

    Fields are floats for a single estimate and arrays for a batch of outcomes.

    Parameters
    ----------
    statistic : float or ndarray
        estimate / se.
    statistic_type : str
        "t" (finite df) or "z" (infinite df).
    p : float or ndarray
        Two-sided p-value.
    ci_low, ci_high : float or ndarray
        Confidence limits estimate -/+ critical value x se.

    Examples
    --------
    >>> w = wald(np.array([1.0, -0.2]), np.array([0.5, 0.4]), np.inf)
    >>> w.statistic_type, w.statistic.round(6).tolist(), w.p.round(6).tolist()
    ('z', [2.0, -0.5], [0.0455, 0.617075])
    """

    statistic: float | np.ndarray
    statistic_type: str  # "t" or "z"
    p: float | np.ndarray
    ci_low: float | np.ndarray
    ci_high: float | np.ndarray


def wald(estimate, se, df, alpha: float = 0.05) -> Wald:
    """Two-sided Wald test of estimate = 0 with its (1 - alpha) interval; df = inf gives z (Wald 1943).

    A df that is NaN (no valid denominator df) gives NaN p and interval, never a silent z.

    Parameters
    ----------
    estimate, se : float or array_like
        Estimates and their standard errors (broadcast together).
    df : float or array_like
        Denominator degrees of freedom; inf for every entry gives the normal (z) reference.
    alpha : float
        1 - confidence level of the interval.

    Returns
    -------
    Wald
        Floats for scalar input, arrays for arrays.

    Examples
    --------
    >>> w = wald(1.0, 0.5, 20.0)
    >>> w.statistic_type, round(w.statistic, 6), round(w.p, 6)
    ('t', 2.0, 0.059266)
    >>> round(w.ci_low, 6), round(w.ci_high, 6)
    (-0.042982, 2.042982)
    >>> wald(1.0, 0.5, float("inf")).statistic_type
    'z'
    """
    est = np.asarray(estimate, dtype=float)
    se = np.asarray(se, dtype=float)
    dof = np.broadcast_to(np.asarray(df, dtype=float), np.broadcast(est, se).shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = est / se
    normal = bool(np.all(np.isinf(dof)))
    if normal:
        p = 2 * stats.norm.sf(np.abs(stat))
        crit = stats.norm.ppf(1 - alpha / 2)
    else:
        p = 2 * stats.t.sf(np.abs(stat), dof)
        crit = stats.t.ppf(1 - alpha / 2, dof)
    low, high = est - crit * se, est + crit * se
    if est.ndim == 0 and se.ndim == 0:
        return Wald(float(stat), "z" if normal else "t", float(p), float(low), float(high))
    return Wald(stat, "z" if normal else "t", p, low, high)
