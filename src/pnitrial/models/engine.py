"""Exact (RE)ML fitting of linear mixed models with one grouping factor.

The model is y = X beta + Z b + e with b_g ~ N(0, sigma^2 Lambda Lambda') per
participant g and e ~ N(0, sigma^2 I), parameterised as lme4 does: theta holds
the lower triangle of the relative Cholesky factor Lambda, column by column.
Everything the likelihood needs is reduced to per-participant sufficient
statistics (Z'Z, Z'X, Z'y), so one evaluation costs O(m q^2 p) flops for m
participants, independent of how many rows each participant has.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pnitrial.models.intercept import batch_stats
from pnitrial.models.optimise import (
    converged,
    minimise_theta,
    optimise_lambda,
    scaled_gradient,
    singular,
    theta_convergence,
)


@dataclass(frozen=True)
class ModelData:
    """Numeric arrays of one model: rows sorted by participant."""

    X: np.ndarray  # (n, p) fixed-effects design
    Z: np.ndarray  # (n, q) random-effects design within a participant
    y: np.ndarray  # (n,)
    group: np.ndarray  # (n,) participant codes 0..m-1, non-decreasing
    fixed_names: tuple[str, ...]
    random_names: tuple[str, ...] = ("(Intercept)",)

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def q(self) -> int:
        return self.Z.shape[1]

    @property
    def m(self) -> int:
        return int(self.group[-1]) + 1 if self.n else 0


@dataclass
class SufficientStats:
    """Per-participant cross-products; y is pre-centred on its OLS fit for accuracy."""

    A: np.ndarray  # (m, q, q) Z'Z
    B: np.ndarray  # (m, q, p) Z'X
    c: np.ndarray  # (m, q)    Z'y*
    XtX: np.ndarray
    Xty: np.ndarray
    yty: float
    beta_ols: np.ndarray
    n: int
    p: int


def sufficient_stats(d: ModelData) -> SufficientStats:
    """Reduce a model's data to per-participant sufficient statistics (Z'Z, Z'X, Z'y per participant).

    Examples
    --------
    >>> import numpy as np
    >>> g = np.repeat(np.arange(3), 2)
    >>> d = ModelData(np.ones((6, 1)), np.ones((6, 1)), np.arange(6.0), g, ("(Intercept)",))
    >>> sufficient_stats(d).A[:, 0, 0].tolist()
    [2.0, 2.0, 2.0]
    """
    if np.any(np.diff(d.group) < 0):
        raise ValueError("rows must be sorted by participant")
    beta_ols, *_ = np.linalg.lstsq(d.X, d.y, rcond=None)
    ystar = d.y - d.X @ beta_ols  # removes the mean so y'V^-1y keeps its digits
    starts = np.flatnonzero(np.r_[True, np.diff(d.group) != 0])
    Z = d.Z
    A = np.add.reduceat(Z[:, :, None] * Z[:, None, :], starts, axis=0)
    B = np.add.reduceat(Z[:, :, None] * d.X[:, None, :], starts, axis=0)
    c = np.add.reduceat(Z * ystar[:, None], starts, axis=0)
    return SufficientStats(
        A=A,
        B=B,
        c=c,
        XtX=d.X.T @ d.X,
        Xty=d.X.T @ ystar,
        yty=float(ystar @ ystar),
        beta_ols=beta_ols,
        n=d.n,
        p=d.p,
    )


def theta_to_lambda(theta: np.ndarray, q: int) -> np.ndarray:
    """lme4's relative Cholesky factor from theta (lower triangle, column-major).

    Examples
    --------
    >>> import numpy as np
    >>> theta_to_lambda(np.array([1.0, 0.5, 2.0]), 2).tolist()
    [[1.0, 0.0], [0.5, 2.0]]
    """
    lam = np.zeros((q, q))
    rows, cols = np.tril_indices(q)
    order = np.lexsort((rows, cols))  # column-major like lme4
    lam[rows[order], cols[order]] = theta
    return lam


def theta_lower_bounds(q: int) -> np.ndarray:
    """0 for diagonal elements of Lambda, -inf for off-diagonal ones (as lme4).

    Examples
    --------
    >>> theta_lower_bounds(2).tolist()
    [0.0, -inf, 0.0]
    """
    rows, cols = np.tril_indices(q)
    order = np.lexsort((rows, cols))
    return np.where(rows[order] == cols[order], 0.0, -np.inf)


@dataclass
class Profile:
    """Quantities of the likelihood at one theta (or, stacked, at several), beta and sigma profiled out."""

    logdet_m: np.ndarray  # log|I + Lambda'Z'Z Lambda| summed over participants
    xtvx: np.ndarray  # X'V^-1 X with V relative to sigma^2
    beta: np.ndarray
    pwrss: np.ndarray  # penalised weighted residual sum of squares
    logdet_x: np.ndarray  # log|X'V^-1 X|

    def at(self, i: int) -> Profile:
        """The profile at the i-th of stacked thetas."""
        return Profile(
            float(self.logdet_m[i]), self.xtvx[i], self.beta[i], float(self.pwrss[i]), float(self.logdet_x[i])
        )


def _gls(logdet_m: np.ndarray, corr: np.ndarray, st: SufficientStats) -> Profile:
    """Generalised least squares from the Woodbury corrections, stacked along the first axis."""
    p = st.p
    xtvx = st.XtX - corr[:, :p, :p]
    xtvy = st.Xty - corr[:, :p, p]
    ytvy = st.yty - corr[:, p, p]
    rx = np.linalg.cholesky(xtvx)
    beta_star = np.linalg.solve(xtvx, xtvy[:, :, None])[:, :, 0]
    pwrss = np.maximum(ytvy - np.einsum("sa,sa->s", beta_star, xtvy), 0.0)
    logdet_x = 2.0 * np.log(np.diagonal(rx, axis1=1, axis2=2)).sum(axis=1)
    return Profile(logdet_m, xtvx, st.beta_ols + beta_star, pwrss, logdet_x)


def profile(theta: np.ndarray, st: SufficientStats) -> Profile:
    """Generalised least squares at theta by Woodbury on per-participant blocks."""
    q = st.A.shape[1]
    theta = np.asarray(theta, dtype=float)
    lam = theta_to_lambda(theta, q)
    u = np.einsum("ji,gjk->gik", lam, st.B)  # Lambda'Z'X
    v = np.einsum("ji,gj->gi", lam, st.c)  # Lambda'Z'y
    M = np.einsum("ji,gjk,kl->gil", lam, st.A, lam) + np.eye(q)
    chol = np.linalg.cholesky(M)
    logdet_m = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum()
    rhs3 = np.concatenate([u, v[:, :, None]], axis=2)
    corr = np.einsum("gqa,gqb->ab", rhs3, np.linalg.solve(M, rhs3))
    return _gls(np.array([logdet_m]), corr[None], st).at(0)


def _criterion(pr: Profile, st: SufficientStats, reml: bool) -> np.ndarray:
    dof = st.n - st.p if reml else st.n
    dev = pr.logdet_m + dof * (1.0 + np.log(2.0 * np.pi * pr.pwrss / dof))
    return dev + (pr.logdet_x if reml else 0.0)


def deviance(theta: np.ndarray, st: SufficientStats, reml: bool = True) -> float:
    """lme4's profiled deviance (REML criterion when reml=True) at theta.

    Examples
    --------
    >>> import numpy as np
    >>> g = np.repeat(np.arange(4), 2)
    >>> y = np.array([1.0, 1.2, 2.0, 2.4, 0.5, 0.9, 1.5, 1.1])
    >>> st = sufficient_stats(ModelData(np.ones((8, 1)), np.ones((8, 1)), y, g, ("(Intercept)",)))
    >>> bool(deviance(np.array([1.0]), st) < deviance(np.array([0.0]), st))  # participants differ
    True
    """
    return float(_criterion(profile(theta, st), st, reml))


def deviance_varpar(varpar: np.ndarray, st: SufficientStats, reml: bool = True) -> float:
    """Deviance as a function of (theta, sigma) with beta profiled (lmerTest's devfun_vp; Kuznetsova et al. 2017)."""
    theta, sigma = varpar[:-1], varpar[-1]
    pr = profile(theta, st)
    s2 = sigma**2
    dof = st.n - st.p if reml else st.n
    dev = pr.logdet_m + pr.pwrss / s2 + dof * np.log(2.0 * np.pi * s2)
    return float(dev + (pr.logdet_x if reml else 0.0))


def covbeta_varpar(varpar: np.ndarray, st: SufficientStats) -> np.ndarray:
    """Var(beta-hat) = sigma^2 (X'V^-1X)^-1 at (theta, sigma) (lmerTest's get_covbeta; Kuznetsova et al. 2017)."""
    pr = profile(varpar[:-1], st)
    return varpar[-1] ** 2 * np.linalg.inv(pr.xtvx)


@dataclass
class LMMFit:
    """A fitted model: estimates, optimiser diagnostics and the data it came from."""

    data: ModelData
    stats: SufficientStats
    reml: bool
    theta: np.ndarray
    beta: np.ndarray
    sigma: float
    vcov: np.ndarray
    criterion: float
    converged: bool
    singular: bool
    gradient_max: float
    warnings: list[str] = field(default_factory=list)

    @property
    def varpar(self) -> np.ndarray:
        """(theta, sigma): the parameters of lmerTest's Satterthwaite computations."""
        return np.r_[self.theta, self.sigma]

    @property
    def n_obs(self) -> int:
        return self.data.n

    @property
    def n_participants(self) -> int:
        return self.data.m

    @property
    def var_participant(self) -> float:
        """The random-intercept variance sigma^2 (Lambda Lambda')[0, 0]."""
        return float(self.random_cov[0, 0])

    @property
    def random_cov(self) -> np.ndarray:
        """Covariance matrix of the random effects, sigma^2 Lambda Lambda'."""
        lam = theta_to_lambda(self.theta, self.data.q)
        return self.sigma**2 * lam @ lam.T

    def coef(self) -> dict[str, float]:
        return dict(zip(self.data.fixed_names, self.beta.tolist(), strict=True))


def _random_intercept_optimum(data: ModelData, reml: bool) -> tuple[np.ndarray, float, bool]:
    """theta of a random-intercept model: the batched optimiser (models.optimise) with one outcome."""
    st, _ = batch_stats(data.X, data.group, data.y[:, None])
    lam, ok = optimise_lambda(st, reml)
    grad, minimum = scaled_gradient(lam, st, reml)
    return np.sqrt(lam), float(grad[0]), bool(ok[0] and converged(grad[0], minimum[0]))


def theta_start(q: int) -> np.ndarray:
    """lme4's starting value: Lambda = I."""
    return np.where(np.isfinite(theta_lower_bounds(q)), 1.0, 0.0)


def fit_lmm(data: ModelData, reml: bool = True) -> LMMFit:
    """Fit y = X beta + Z b + e by minimising lme4's profiled (RE)ML deviance over theta.

    A random intercept (q = 1) goes through the one optimiser core (models.optimise, the batched
    optimiser with one outcome); several random effects per participant through L-BFGS-B over theta.
    Bates et al. 2015 (J Stat Softw 67(1)) for the profiled criterion.

    Parameters
    ----------
    data : ModelData
        Designs, response and participant codes, rows sorted by participant.
    reml : bool
        REML (default) or maximum likelihood.

    Returns
    -------
    LMMFit
        Estimates, Var(beta-hat), the criterion and lme4's convergence and boundary verdicts.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(20), 2); t = np.tile([0.0, 1.0], 20); arm = (g % 2).astype(float)
    >>> X = np.column_stack([np.ones(40), arm, t, arm * t])
    >>> y = X @ [1, 0.5, 0.2, 0.8] + rng.normal(size=20)[g] + rng.normal(size=40)
    >>> fit = fit_lmm(ModelData(X, np.ones((40, 1)), y, g, ("(Intercept)", "arm", "time", "arm:time")))
    >>> fit.converged, round(float(fit.theta[0]), 3), round(fit.criterion, 3)
    (True, 0.996, 114.665)
    """
    if data.n <= data.p:
        raise ValueError(f"{data.n} observations cannot estimate {data.p} fixed effects")
    if np.linalg.matrix_rank(data.X) < data.p:
        raise ValueError("fixed-effects design is rank deficient")
    n_per_group = np.bincount(data.group)
    if data.q > 1 and data.m * data.q >= data.n:
        raise ValueError(
            f"number of observations ({data.n}) <= number of random effects "
            f"({data.m * data.q}) for term (1 + ... | participant); "
            "the random-effects parameters and the residual variance are unidentifiable"
        )
    st = sufficient_stats(data)

    def fun(t):
        return deviance(np.atleast_1d(t), st, reml)

    if data.q == 1:
        theta, gmax, ok = _random_intercept_optimum(data, reml)
        conv_ok = ok
    else:
        lower = theta_lower_bounds(data.q)
        theta, ok = minimise_theta(fun, theta_start(data.q), lower)
        gmax, conv_ok = theta_convergence(fun, theta, lower)
    notes = []
    if not (ok and conv_ok):
        notes.append(f"model failed to converge: scaled gradient {gmax:.2g}")
    if np.all(n_per_group == 1):
        notes.append("every participant has one observation: random intercept not identifiable")
    return fit_at_theta(data, st, theta, reml, bool(ok and conv_ok), gmax, notes)


def fit_at_theta(
    data: ModelData,
    st: SufficientStats,
    theta: np.ndarray,
    reml: bool,
    is_converged: bool,
    gradient_max: float,
    notes: list[str],
) -> LMMFit:
    """The fit at a given theta: beta, sigma and Var(beta) profiled exactly, boundary flagged."""
    pr = profile(theta, st)
    dof = data.n - data.p if reml else data.n
    sigma = float(np.sqrt(pr.pwrss / dof))
    is_singular = bool(np.any(singular(theta[np.isfinite(theta_lower_bounds(data.q))])))
    boundary = ["boundary (singular) fit: a random-effect variance is estimated at zero"] if is_singular else []
    return LMMFit(
        data=data,
        stats=st,
        reml=reml,
        theta=theta,
        beta=pr.beta,
        sigma=sigma,
        vcov=sigma**2 * np.linalg.inv(pr.xtvx),
        criterion=deviance(theta, st, reml),
        converged=is_converged,
        singular=is_singular,
        gradient_max=gradient_max,
        warnings=boundary + notes,
    )
