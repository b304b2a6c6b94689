"""ANCOVA of a later visit on baseline: ordinary least squares with exact t inference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pnitrial.inference.contrasts import Estimate
from pnitrial.inference.wald import wald
from pnitrial.models.design import AncovaData


@dataclass(frozen=True)
class OLSFit:
    beta: np.ndarray
    vcov: np.ndarray
    df_resid: int
    sigma2: float
    n: int


def fit_ols(d: AncovaData) -> OLSFit:
    """Least squares by QR; refuses a rank-deficient design instead of dropping columns."""
    n, p = d.X.shape
    if n <= p:
        raise ValueError(f"{n} complete pairs cannot estimate {p} coefficients")
    q, r = np.linalg.qr(d.X)
    if np.min(np.abs(np.diag(r))) < 1e-10 * np.max(np.abs(np.diag(r))):
        raise ValueError("ANCOVA design is rank deficient")
    beta = np.linalg.solve(r, q.T @ d.y)
    resid = d.y - d.X @ beta
    df = n - p
    s2 = float(resid @ resid / df)
    if not s2 > 1e-12 * float(np.var(d.y)):
        # a p-value from a residual variance of rounding noise would be meaningless
        raise ValueError(f"degenerate: the model fits the {n} complete pairs exactly (residual variance {s2:.1e})")
    rinv = np.linalg.inv(r)
    return OLSFit(beta, s2 * rinv @ rinv.T, df, s2, n)


def ancova_effect(d: AncovaData, alpha: float = 0.05) -> tuple[Estimate, OLSFit]:
    """Arm coefficient adjusted for baseline (Vickers & Altman 2001, BMJ 323:1123)."""
    fit = fit_ols(d)
    est, se = float(fit.beta[1]), float(np.sqrt(fit.vcov[1, 1]))
    w = wald(est, se, float(fit.df_resid), alpha)
    return Estimate(est, se, float(fit.df_resid), w.statistic, "t", w.p, w.ci_low, w.ci_high), fit
