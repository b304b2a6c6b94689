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
    statistic: float | np.ndarray
    statistic_type: str  # "t" or "z"
    p: float | np.ndarray
    ci_low: float | np.ndarray
    ci_high: float | np.ndarray


def wald(estimate, se, df, alpha: float = 0.05) -> Wald:
    """Two-sided Wald test of estimate = 0 with its (1 - alpha) interval; df = inf gives z (Wald 1943).

    A df that is NaN (no valid denominator df) gives NaN p and interval, never a silent z.

    Examples
    --------
    >>> w = wald(1.0, 0.5, 20.0)
    >>> w.statistic_type, round(w.statistic, 6), round(w.p, 6)
    ('t', 2.0, 0.059266)
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
