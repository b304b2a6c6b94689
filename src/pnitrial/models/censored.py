"""Left-censored (Tobit) linear mixed model with a random intercept, fitted by maximum likelihood.

y_ij = x_ij'b + u_i + e_ij, u_i ~ N(0, s_u^2), e_ij ~ N(0, s^2); a value below its limit of
detection c_ij contributes P(y_ij < c_ij | u_i) = Phi((c_ij - x_ij'b - u_i)/s) instead of a density
(Thiebaut & Jacqmin-Gadda 2004, Comput Methods Programs Biomed 74:255). The random intercept is
integrated out per participant by adaptive Gauss-Hermite quadrature, centred at the mode of the
integrand with its curvature (Pinheiro & Bates 1995, J Comput Graph Stat 4:12). With nothing
censored the integrand is Gaussian, the quadrature exact, and the fit is the ordinary ML fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special

from pnitrial.models.engine import ModelData, fit_lmm
from pnitrial.models.numderiv import jacobian

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


@dataclass
class CensoredFit:
    """Estimates on (beta, log s_u, log s), their covariance (inverse observed information) and status.

    Parameters
    ----------
    beta : ndarray, shape (p,)
        Fixed effects.
    sigma_u, sigma : float
        Random-intercept and residual SD.
    vcov : ndarray, shape (p, p)
        Covariance of beta-hat: the beta block of the inverse observed information of all parameters.
    vcov_given_variances : ndarray, shape (p, p)
        Covariance of beta-hat with the SDs held fixed (lme4's vcov when nothing is censored).
    loglik : float
        Maximised log-likelihood.
    converged, singular : bool
        Max |gradient| below 1e-4; sigma_u at its lower bound.
    gradient_max : float
        Max |gradient| at the optimum (over the estimated parameters).
    n_censored : int
        Values below their limit of detection.
    quadrature_points : int
        Gauss-Hermite nodes per participant.
    warnings : list of str
        Boundary and convergence notes.

    Examples
    --------
    >>> from pnitrial.models.engine import ModelData
    >>> rng = np.random.default_rng(3)
    >>> g = np.repeat(np.arange(6), 2); t = np.tile([0.0, 1.0], 6)
    >>> X = np.column_stack([np.ones(12), t])
    >>> y = 1.0 + 0.5 * t + rng.normal(size=6)[g] + 0.5 * rng.normal(size=12)
    >>> lod = np.full(12, 0.5); cens = y < lod  # three values below the limit of detection
    >>> d = ModelData(X, np.ones((12, 1)), np.where(cens, lod, y), g, ("(Intercept)", "time"))
    >>> fit = fit_censored(d, cens, lod)
    >>> fit.n_censored, fit.quadrature_points, fit.vcov.shape, fit.warnings
    (3, 40, (2, 2), [])
    """

    beta: np.ndarray
    sigma_u: float
    sigma: float
    vcov: np.ndarray  # of beta: inverse observed information of all parameters
    vcov_given_variances: np.ndarray  # of beta with the SDs held fixed (lme4's vcov when nothing is censored)
    loglik: float
    converged: bool
    singular: bool
    gradient_max: float
    n_censored: int
    quadrature_points: int
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CensoredData:
    """The arrays of the censored likelihood, rows sorted by participant.

    Parameters
    ----------
    X : ndarray, shape (n, p)
        Fixed-effects design.
    y : ndarray, shape (n,)
        Observed value, or the limit of detection where censored.
    censored : ndarray of bool, shape (n,)
        Below the limit of detection.
    group : ndarray, shape (n,)
        Participant codes 0..m-1, non-decreasing.
    starts : ndarray, shape (m,)
        First row of each participant.

    Examples
    --------
    >>> from pnitrial.models.engine import ModelData
    >>> rng = np.random.default_rng(3)
    >>> g = np.repeat(np.arange(6), 2); t = np.tile([0.0, 1.0], 6)
    >>> X = np.column_stack([np.ones(12), t])
    >>> y = 1.0 + 0.5 * t + rng.normal(size=6)[g] + 0.5 * rng.normal(size=12)
    >>> lod = np.full(12, 0.5); cens = y < lod  # three values below the limit of detection
    >>> d = ModelData(X, np.ones((12, 1)), np.where(cens, lod, y), g, ("(Intercept)", "time"))
    >>> cd = CensoredData.from_model(d, cens, lod)
    >>> int(cd.censored.sum()), cd.starts.tolist()
    (3, [0, 2, 4, 6, 8, 10])
    """

    X: np.ndarray
    y: np.ndarray  # observed value, or the limit of detection where censored
    censored: np.ndarray  # bool
    group: np.ndarray  # 0..m-1, non-decreasing
    starts: np.ndarray  # first row of each participant

    @classmethod
    def from_model(cls, d: ModelData, censored: np.ndarray, limit: np.ndarray) -> CensoredData:
        """From a model's arrays: censored rows take their limit as y."""
        cens = np.asarray(censored, dtype=bool)
        y = np.where(cens, limit, d.y)
        starts = np.flatnonzero(np.r_[True, np.diff(d.group) != 0])
        return cls(d.X, y, cens, d.group, starts)


def _row_terms(cd: CensoredData, beta: np.ndarray, sigma: float, u: np.ndarray):
    """Per row and node: log density or log Phi, and its first two derivatives in u."""
    r = (cd.y - cd.X @ beta)[:, None] - u  # (n, Q)
    z = r / sigma
    obs = ~cd.censored[:, None]
    logphi_c = special.log_ndtr(z)
    mills = np.exp(-0.5 * z * z - LOG_SQRT_2PI - logphi_c)  # phi(z) / Phi(z)
    ll = np.where(obs, -0.5 * z * z - math.log(sigma) - LOG_SQRT_2PI, logphi_c)
    d1 = np.where(obs, z / sigma, -mills / sigma)
    d2 = np.where(obs, -1.0 / sigma**2, -mills * (z + mills) / sigma**2)
    return ll, d1, d2, z, mills


def _sum_by_participant(cd: CensoredData, a: np.ndarray) -> np.ndarray:
    return np.add.reduceat(a, cd.starts, axis=0)


def _modes(cd: CensoredData, beta: np.ndarray, sigma: float, sigma_u: float) -> tuple[np.ndarray, np.ndarray]:
    """Mode and curvature scale of each participant's integrand (Newton; the log integrand is concave)."""
    m = len(cd.starts)
    u = np.zeros(m)
    for _ in range(100):
        _, d1, d2, _, _ = _row_terms(cd, beta, sigma, u[cd.group][:, None])
        g = _sum_by_participant(cd, d1[:, 0]) - u / sigma_u**2
        h = _sum_by_participant(cd, d2[:, 0]) - 1 / sigma_u**2
        step = g / h
        u = u - step
        if np.max(np.abs(step)) <= 1e-12 * (1 + np.max(np.abs(u))):
            break
    _, _, d2, _, _ = _row_terms(cd, beta, sigma, u[cd.group][:, None])
    h = _sum_by_participant(cd, d2[:, 0]) - 1 / sigma_u**2
    return u, 1 / np.sqrt(-h)


def loglik_and_gradient(cd: CensoredData, psi: np.ndarray, q: int = 40) -> tuple[float, np.ndarray]:
    """Log-likelihood in psi = (beta, log s_u, log s) by adaptive Gauss-Hermite with q nodes, and its gradient.

    The gradient averages the complete-data score over each participant's posterior nodes, which
    is the derivative of the quadrature with its nodes held at the current mode. Adaptive
    quadrature: Pinheiro & Bates 1995 (J Comput Graph Stat 4:12); the censored likelihood:
    Thiebaut & Jacqmin-Gadda 2004 (Comput Methods Programs Biomed 74:255).

    Parameters
    ----------
    cd : CensoredData
        The data.
    psi : ndarray, shape (p + 2,)
        (beta, log s_u, log s).
    q : int
        Gauss-Hermite nodes per participant.

    Returns
    -------
    loglik : float
        The log-likelihood.
    gradient : ndarray, shape (p + 2,)
        Its gradient in psi.

    Examples
    --------
    >>> from pnitrial.models.engine import ModelData
    >>> rng = np.random.default_rng(3)
    >>> g = np.repeat(np.arange(6), 2); t = np.tile([0.0, 1.0], 6)
    >>> X = np.column_stack([np.ones(12), t])
    >>> y = 1.0 + 0.5 * t + rng.normal(size=6)[g] + 0.5 * rng.normal(size=12)
    >>> lod = np.full(12, 0.5); cens = y < lod  # three values below the limit of detection
    >>> d = ModelData(X, np.ones((12, 1)), np.where(cens, lod, y), g, ("(Intercept)", "time"))
    >>> cd = CensoredData.from_model(d, cens, lod)
    >>> ll, grad = loglik_and_gradient(cd, np.array([1.0, 0.5, 0.0, np.log(0.5)]))
    >>> round(ll, 4), grad.round(4).tolist()
    (-12.2188, [-1.0277, 1.6624, -1.182, -2.4847])
    """
    p = cd.X.shape[1]
    beta, sigma_u, sigma = psi[:p], math.exp(psi[p]), math.exp(psi[p + 1])
    nodes, weights = special.roots_hermite(q)
    mode, scale = _modes(cd, beta, sigma, sigma_u)
    u = mode[:, None] + math.sqrt(2) * scale[:, None] * nodes[None, :]  # (m, Q)
    ll, _, _, z, mills = _row_terms(cd, beta, sigma, u[cd.group])
    ll_u = -0.5 * (u / sigma_u) ** 2 - math.log(sigma_u) - LOG_SQRT_2PI
    log_terms = _sum_by_participant(cd, ll) + ll_u + nodes**2 + np.log(weights)  # (m, Q)
    log_li = special.logsumexp(log_terms, axis=1) + np.log(math.sqrt(2) * scale)
    post = np.exp(log_terms - special.logsumexp(log_terms, axis=1, keepdims=True))  # node weights per participant
    w = post[cd.group]  # (n, Q)
    obs = ~cd.censored[:, None]
    dbeta_row = np.where(obs, z / sigma, -mills / sigma)  # d ll / d(x'b) ... times x
    dlogs_row = np.where(obs, z * z - 1.0, -mills * z)
    grad = np.empty(p + 2)
    grad[:p] = cd.X.T @ (w * dbeta_row).sum(axis=1)
    grad[p] = float((post * ((u / sigma_u) ** 2 - 1.0)).sum())
    grad[p + 1] = float((w * dlogs_row).sum())
    return float(log_li.sum()), grad


def fit_censored(
    d: ModelData, censored: np.ndarray, limit: np.ndarray, q: int = 40, start: np.ndarray | None = None
) -> CensoredFit:
    """ML fit of the random-intercept Tobit model; covariance from the observed information.

    Tobin 1958 (Econometrica 26:24) with a random intercept, as Thiebaut & Jacqmin-Gadda 2004
    (Comput Methods Programs Biomed 74:255): L-BFGS-B from the ordinary ML fit, then Newton steps
    on the analytic gradient; with nothing censored the result is the ordinary ML fit.

    Parameters
    ----------
    d : ModelData
        Designs (a random intercept only), values (anything where censored) and participant codes.
    censored : ndarray of bool, shape (n,)
        Below the limit of detection.
    limit : ndarray, shape (n,)
        Limits of detection (used where censored), on the model scale.
    q : int
        Gauss-Hermite nodes per participant.
    start : ndarray, optional
        Starting psi = (beta, log s_u, log s); default from the ML fit with the limits as values.

    Returns
    -------
    CensoredFit
        Estimates, covariance and status.

    Raises
    ------
    ValueError
        A model with more than a random intercept.

    Examples
    --------
    >>> from pnitrial.models.engine import ModelData
    >>> rng = np.random.default_rng(3)
    >>> g = np.repeat(np.arange(6), 2); t = np.tile([0.0, 1.0], 6)
    >>> X = np.column_stack([np.ones(12), t])
    >>> y = 1.0 + 0.5 * t + rng.normal(size=6)[g] + 0.5 * rng.normal(size=12)
    >>> lod = np.full(12, 0.5); cens = y < lod  # three values below the limit of detection
    >>> d = ModelData(X, np.ones((12, 1)), np.where(cens, lod, y), g, ("(Intercept)", "time"))
    >>> fit = fit_censored(d, cens, lod)
    >>> [float(f"{b:.4g}") for b in fit.beta], float(f"{fit.sigma_u:.4g}"), float(f"{fit.sigma:.4g}")
    ([0.738, 0.66], 0.8696, 0.3441)
    >>> fit.converged, fit.singular, fit.n_censored
    (True, False, 3)
    """
    if d.q != 1:
        raise ValueError("the censored model has a random intercept only")
    cd = CensoredData.from_model(d, censored, limit)
    p = d.p
    if start is None:  # the ordinary ML fit with the limits as values
        naive = fit_lmm(ModelData(d.X, d.Z, cd.y, d.group, d.fixed_names), reml=False)
        start = np.r_[naive.beta, math.log(max(naive.theta[0], 1e-3) * naive.sigma), math.log(naive.sigma)]
    scale_y = float(np.std(cd.y)) or 1.0
    lower_u = math.log(1e-5 * scale_y)
    bounds = [(None, None)] * p + [(lower_u, None), (None, None)]

    def objective(psi):
        ll, g = loglik_and_gradient(cd, psi, q)
        return -ll, -g

    opts = {"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000}
    res = optimize.minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds, options=opts)
    psi = res.x
    warnings: list[str] = []
    singular = psi[p] <= lower_u + 1e-6
    grad_fn = lambda x: loglik_and_gradient(cd, x, q)[1]  # noqa: E731
    if not singular:  # Newton polish with the Hessian of the analytic gradient
        for _ in range(5):
            hess = jacobian(grad_fn, psi)
            hess = 0.5 * (hess + hess.T)
            step = np.linalg.solve(hess, grad_fn(psi))
            psi = psi - step
            if np.max(np.abs(step)) < 1e-12:
                break
    ll, grad = loglik_and_gradient(cd, psi, q)
    hess = jacobian(grad_fn, psi)
    info = -0.5 * (hess + hess.T)
    keep = list(range(p)) + ([p + 1] if singular else [p, p + 1])  # at the boundary s_u is not estimated
    cov = np.linalg.inv(info[np.ix_(keep, keep)])[:p, :p]
    cov_given = np.linalg.inv(info[:p, :p])
    if singular:
        warnings.append("boundary (singular) fit: random-intercept SD at its lower bound")
    gmax = float(np.max(np.abs(grad if not singular else np.r_[grad[:p], grad[p + 1]])))
    converged = bool(gmax < 1e-4 and np.all(np.isfinite(psi)))
    if not converged:
        warnings.append(f"not converged: max |gradient| {gmax:.2g}")
    return CensoredFit(
        beta=psi[:p].copy(),
        sigma_u=math.exp(psi[p]),
        sigma=math.exp(psi[p + 1]),
        vcov=cov,
        vcov_given_variances=cov_given,
        loglik=ll,
        converged=converged,
        singular=bool(singular),
        gradient_max=gmax,
        n_censored=int(np.sum(censored)),
        quadrature_points=q,
        warnings=warnings,
    )
