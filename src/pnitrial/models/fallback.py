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
    """lme4's theta (column-major lower triangle of the relative Cholesky factor) from a covariance.

    Parameters
    ----------
    cov_re : ndarray, shape (q, q)
        Covariance of the random effects (statsmodels' cov_re).
    scale : float
        Residual variance sigma^2; theta is the Cholesky factor of cov_re / scale. A covariance
        that is not positive definite is first projected onto the semi-definite cone.

    Returns
    -------
    ndarray, shape (q (q + 1) / 2,)
        theta in lme4's order.

    Examples
    --------
    >>> theta_from_cov(np.array([[4.0]]), 1.0).round(6).tolist()
    [2.0]
    >>> theta_from_cov(np.array([[4.0, 1.0], [1.0, 2.0]]), 2.0).round(6).tolist()
    [1.414214, 0.353553, 0.935414]
    """
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
    """Fit with statsmodels' optimiser; everything reported is recomputed at its theta.

    Parameters
    ----------
    data : ModelData
        Designs, response and participant codes, rows sorted by participant.
    reml : bool
        REML (default) or maximum likelihood.

    Returns
    -------
    LMMFit
        The fit at statsmodels' theta, re-profiled by pnitrial's criterion, with `FALLBACK_NOTE`
        among its warnings.

    Examples
    --------
    >>> from pnitrial.models.engine import ModelData
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(12), 2); t = np.tile([0.0, 1.0], 12); arm = (g % 2).astype(float)
    >>> X = np.column_stack([np.ones(24), t, arm * t])
    >>> y = X @ [1, 0.5, 0.8] + rng.normal(size=12)[g] + rng.normal(size=24)
    >>> d = ModelData(X, np.ones((24, 1)), y, g, ("(Intercept)", "time", "arm:time"))
    >>> fit = fit_statsmodels(d)
    >>> fit.converged, round(float(fit.theta[0]), 3), round(fit.criterion, 2), fit.warnings == [FALLBACK_NOTE]
    (True, 1.272, 77.32, True)
    """
    import statsmodels.api as sm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sm.MixedLM(data.y, data.X, groups=data.group, exog_re=data.Z).fit(reml=reml)
    theta = theta_from_cov(np.atleast_2d(res.cov_re), float(res.scale))
    notes = [FALLBACK_NOTE] + ([] if res.converged else ["statsmodels reports no convergence either"])
    return fit_at_theta(data, sufficient_stats(data), theta, reml, bool(res.converged), float("nan"), notes)


def fit_with_fallback(data: ModelData, reml: bool = True) -> LMMFit:
    """pnitrial's engine; if it does not converge, statsmodels, kept only when it does better.

    Parameters
    ----------
    data : ModelData
        Designs, response and participant codes, rows sorted by participant.
    reml : bool
        REML (default) or maximum likelihood.

    Returns
    -------
    LMMFit
        The engine's fit, or statsmodels' when the engine did not converge and statsmodels
        converged to a lower criterion.

    Examples
    --------
    >>> from pnitrial.models.engine import ModelData
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(12), 2); t = np.tile([0.0, 1.0], 12); arm = (g % 2).astype(float)
    >>> X = np.column_stack([np.ones(24), t, arm * t])
    >>> y = X @ [1, 0.5, 0.8] + rng.normal(size=12)[g] + rng.normal(size=24)
    >>> d = ModelData(X, np.ones((24, 1)), y, g, ("(Intercept)", "time", "arm:time"))
    >>> fit = fit_with_fallback(d)  # the engine converges: no fallback
    >>> fit.converged, round(float(fit.theta[0]), 3), fit.warnings
    (True, 1.272, [])
    """
    fit = fit_lmm(data, reml)
    if fit.converged:
        return fit
    try:
        alt = fit_statsmodels(data, reml)
    except (ValueError, np.linalg.LinAlgError):
        return fit
    return alt if alt.converged and alt.criterion < fit.criterion else fit
