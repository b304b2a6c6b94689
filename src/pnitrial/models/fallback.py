"""statsmodels MixedLM as a second optimiser for fits pnitrial's engines do not converge.

statsmodels' variance estimates are mapped to lme4's theta and re-profiled with pnitrial's exact
criterion, so the estimates, the REML criterion and every small-sample test come from the same
code as any other fit; the fallback is kept only when it reaches a lower criterion than the
engine did, and the fit says so in its warnings.
"""

from __future__ import annotations

import warnings

import numpy as np

from pnitrial.models.engine import LMMFit, ModelData, fit_at_theta, fit_lmm, sufficient_stats

FALLBACK_NOTE = "fitted by statsmodels MixedLM (fallback optimiser; estimates re-profiled exactly)"


def theta_from_cov(cov_re: np.ndarray, scale: float) -> np.ndarray:
    """lme4's theta (column-major lower triangle of the relative Cholesky factor) from a covariance."""
    q = cov_re.shape[0]
    rel = np.asarray(cov_re, dtype=float) / scale
    try:
        lam = np.linalg.cholesky(rel + 1e-14 * np.eye(q))
    except np.linalg.LinAlgError:
        vals, vecs = np.linalg.eigh(rel)
        lam = np.linalg.cholesky(vecs @ np.diag(np.maximum(vals, 0) + 1e-14) @ vecs.T)
    rows, cols = np.tril_indices(q)
    order = np.lexsort((rows, cols))
    return lam[rows[order], cols[order]]


def fit_statsmodels(data: ModelData, reml: bool = True) -> LMMFit:
    """Fit with statsmodels' optimiser; everything reported is recomputed at its theta."""
    import statsmodels.api as sm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sm.MixedLM(data.y, data.X, groups=data.group, exog_re=data.Z).fit(reml=reml)
    theta = theta_from_cov(np.atleast_2d(res.cov_re), float(res.scale))
    notes = [FALLBACK_NOTE] + ([] if res.converged else ["statsmodels reports no convergence either"])
    return fit_at_theta(data, sufficient_stats(data), theta, reml, bool(res.converged), float("nan"), notes)


def fit_with_fallback(data: ModelData, reml: bool = True) -> LMMFit:
    """pnitrial's engine; if it does not converge, statsmodels, kept only when it does better."""
    fit = fit_lmm(data, reml)
    if fit.converged:
        return fit
    try:
        alt = fit_statsmodels(data, reml)
    except (ValueError, np.linalg.LinAlgError):
        return fit
    return alt if alt.converged and alt.criterion < fit.criterion else fit
