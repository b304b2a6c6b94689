"""ANCOVA of a later visit on baseline: ordinary least squares with exact t inference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pnitrial.inference.contrasts import Estimate
from pnitrial.inference.wald import wald
from pnitrial.models.design import AncovaData


@dataclass(frozen=True)
class OLSFit:
    """A least-squares fit: coefficients, their covariance and the residual df.

    Parameters
    ----------
    beta : ndarray, shape (p,)
        Coefficients.
    vcov : ndarray, shape (p, p)
        sigma2 (X'X)^-1.
    df_resid : int
        n - p.
    sigma2 : float
        Residual variance, RSS / df_resid.
    n : int
        Observations used.

    Examples
    --------
    >>> fit = fit_ols(np.column_stack([np.ones(5), np.arange(5.0)]), np.array([1.0, 3.1, 4.9, 7.2, 8.8]))
    >>> fit.n, fit.df_resid, round(fit.sigma2, 6), fit.vcov.shape
    (5, 3, 0.030333, (2, 2))
    """

    beta: np.ndarray
    vcov: np.ndarray
    df_resid: int
    sigma2: float
    n: int


def fit_ols(X: np.ndarray, y: np.ndarray) -> OLSFit:
    """Least squares by QR, the one OLS of pnitrial (trial ANCOVA and every panel analyte).

    Refuses, with the reason, a design with no residual df, a rank-deficient one (instead of
    dropping columns as lm does) and a degenerate fit whose residual variance is rounding noise.

    Parameters
    ----------
    X : ndarray, shape (n, p)
        Design matrix of full column rank, n > p.
    y : ndarray, shape (n,)
        Response.

    Returns
    -------
    OLSFit
        Coefficients, their covariance, residual df and variance.

    Raises
    ------
    ValueError
        No residual df, a rank-deficient design, or an exact fit.

    Examples
    --------
    >>> X = np.column_stack([np.ones(5), np.arange(5.0)])
    >>> fit = fit_ols(X, np.array([1.0, 3.1, 4.9, 7.2, 8.8]))
    >>> [round(float(b), 6) for b in fit.beta], fit.df_resid
    ([1.06, 1.97], 3)
    """
    n, p = X.shape
    if n <= p:
        raise ValueError(f"{n} complete pairs cannot estimate {p} coefficients")
    q, r = np.linalg.qr(X)
    if np.min(np.abs(np.diag(r))) < 1e-10 * np.max(np.abs(np.diag(r))):
        raise ValueError("ANCOVA design is rank deficient")
    beta = np.linalg.solve(r, q.T @ y)
    resid = y - X @ beta
    df = n - p
    s2 = float(resid @ resid / df)
    if not s2 > 1e-12 * float(np.var(y)):
        # a p-value from a residual variance of rounding noise would be meaningless
        raise ValueError(f"degenerate: the model fits the {n} complete pairs exactly (residual variance {s2:.1e})")
    rinv = np.linalg.inv(r)
    return OLSFit(beta, s2 * rinv @ rinv.T, df, s2, n)


def ancova_effect(d: AncovaData, alpha: float = 0.05) -> tuple[Estimate, OLSFit]:
    """Arm coefficient adjusted for baseline (Vickers & Altman 2001, BMJ 323:1123).

    Parameters
    ----------
    d : AncovaData
        Design (intercept, arm, baseline value, covariates) and the later visit's values, complete pairs.
    alpha : float
        1 - confidence level of the interval.

    Returns
    -------
    Estimate
        The arm coefficient (column 1) with its exact t test on the residual df.
    OLSFit
        The whole fit.

    Examples
    --------
    >>> from pnitrial.models.design import AncovaData
    >>> X = np.column_stack([np.ones(8), np.repeat([1.0, 0.0], 4), [10, 12, 9, 11, 10, 13, 8, 12.0]])
    >>> y = np.array([7, 9, 6, 8, 10, 13, 8, 11.0])
    >>> d = AncovaData(X, y, ("(Intercept)", "armMBPM", "baseline"), {"intervention": 4, "control": 4})
    >>> est, fit = ancova_effect(d)
    >>> round(est.estimate, 6), round(est.se, 6), est.df, est.statistic_type, round(est.p, 6)
    (-2.765823, 0.259833, 5.0, 't', 0.000127)
    """
    fit = fit_ols(d.X, d.y)
    est, se = float(fit.beta[1]), float(np.sqrt(fit.vcov[1, 1]))
    w = wald(est, se, float(fit.df_resid), alpha)
    return Estimate(est, se, float(fit.df_resid), w.statistic, "t", w.p, w.ci_low, w.ci_high), fit
