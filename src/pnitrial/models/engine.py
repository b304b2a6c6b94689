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
from scipy import optimize

# lme4's isSingular() default: a diagonal theta element below this is a boundary fit.
SINGULAR_TOL = 1e-4
# lme4's checkConv() default tolerance on the Hessian-scaled gradient.
GRADIENT_TOL = 2e-3


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
    """Reduce a model's data to per-participant sufficient statistics."""
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
    """lme4's relative Cholesky factor from theta (lower triangle, column-major)."""
    lam = np.zeros((q, q))
    rows, cols = np.tril_indices(q)
    order = np.lexsort((rows, cols))  # column-major like lme4
    lam[rows[order], cols[order]] = theta
    return lam


def theta_lower_bounds(q: int) -> np.ndarray:
    """0 for diagonal elements of Lambda, -inf for off-diagonal ones (as lme4)."""
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


def _intercept_woodbury(s: np.ndarray, st: SufficientStats) -> tuple[np.ndarray, np.ndarray]:
    """log|M| and the Woodbury correction for random-intercept scales s = theta^2 (one row per s).

    Each participant's block is the scalar M_g = 1 + s n_g, so V_g^-1 = I - (s / M_g) 11'.
    """
    m = 1.0 + np.multiply.outer(s, st.A[:, 0, 0])  # (S, m)
    rhs = np.concatenate([st.B[:, 0, :], st.c], axis=1)  # (m, p + 1)
    corr = np.einsum("sg,ga,gb->sab", s[:, None] / m, rhs, rhs)
    return np.log(m).sum(axis=1), corr


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
    if q == 1:
        return _gls(*_intercept_woodbury(theta[:1] ** 2, st), st).at(0)
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
    """lme4's profiled deviance (REML criterion when reml=True)."""
    return float(_criterion(profile(theta, st), st, reml))


def intercept_deviances(thetas: np.ndarray, st: SufficientStats, reml: bool = True) -> np.ndarray:
    """The profiled deviance of a random-intercept model at many thetas in one vectorised pass."""
    return _criterion(_gls(*_intercept_woodbury(np.asarray(thetas, dtype=float) ** 2, st), st), st, reml)


def intercept_derivatives(s: float, st: SufficientStats, reml: bool = True) -> tuple[float, float]:
    """First and second derivatives of the random-intercept deviance in s = theta^2 (Harville 1977, JASA 72:320)."""
    pr = profile(np.array([np.sqrt(s)]), st)
    n_g = st.A[:, 0, 0]
    m = 1.0 + s * n_g
    b = st.B[:, 0, :] / m[:, None]  # Z_g'V_g^-1 X_g
    e = (st.c[:, 0] - st.B[:, 0, :] @ (pr.beta - st.beta_ols)) / m  # Z_g'V_g^-1 r_g at the GLS fit
    dof = st.n - st.p if reml else st.n
    # log|V| = sum log m_g; r'V^-1 r has slope -sum e_g^2 (envelope theorem) and a curvature through beta(s).
    u = b.T @ e
    k_inv_u = np.linalg.solve(pr.xtvx, u)
    q1 = -float(e @ e)
    q2 = 2.0 * float((n_g / m) @ (e * e)) - 2.0 * float(u @ k_inv_u)
    d1 = float((n_g / m).sum()) + dof * q1 / pr.pwrss
    d2 = -float(((n_g / m) ** 2).sum()) + dof * (q2 / pr.pwrss - (q1 / pr.pwrss) ** 2)
    if reml:
        # log|X'V^-1X| with d(X'V^-1X) = -b'b and d^2(X'V^-1X) = 2 b' diag(n_g / m_g) b.
        k_inv_g = np.linalg.solve(pr.xtvx, b.T @ b)
        k_inv_h = np.linalg.solve(pr.xtvx, b.T @ (b * (n_g / m)[:, None]))
        d1 -= float(np.trace(k_inv_g))
        d2 += 2.0 * float(np.trace(k_inv_h)) - float(np.sum(k_inv_g * k_inv_g.T))
    return d1, d2


def deviance_varpar(varpar: np.ndarray, st: SufficientStats, reml: bool = True) -> float:
    """Deviance as a function of (theta, sigma) with beta profiled (lmerTest's devfun_vp)."""
    theta, sigma = varpar[:-1], varpar[-1]
    pr = profile(theta, st)
    s2 = sigma**2
    dof = st.n - st.p if reml else st.n
    dev = pr.logdet_m + pr.pwrss / s2 + dof * np.log(2.0 * np.pi * s2)
    return float(dev + (pr.logdet_x if reml else 0.0))


def covbeta_varpar(varpar: np.ndarray, st: SufficientStats) -> np.ndarray:
    """Var(beta-hat) = sigma^2 (X'V^-1X)^-1 at (theta, sigma) (lmerTest's get_covbeta)."""
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
    def random_cov(self) -> np.ndarray:
        """Covariance matrix of the random effects, sigma^2 Lambda Lambda'."""
        lam = theta_to_lambda(self.theta, self.data.q)
        return self.sigma**2 * lam @ lam.T

    def coef(self) -> dict[str, float]:
        return dict(zip(self.data.fixed_names, self.beta.tolist(), strict=True))


def _minimise_scalar(fun, lower: float = 0.0) -> tuple[float, bool]:
    """Global-then-local search for one non-negative theta."""
    grid = np.r_[lower, np.geomspace(1e-3, 1e2, 16)]
    vals = np.array([fun(t) for t in grid])
    i = int(np.argmin(vals))
    lo = grid[max(i - 1, 0)]
    hi = grid[min(i + 1, len(grid) - 1)]
    res = optimize.minimize_scalar(fun, bounds=(lo, hi), method="bounded", options={"xatol": 1e-12, "maxiter": 500})
    best, fbest = float(res.x), float(res.fun)
    if vals[i] < fbest:
        best, fbest = float(grid[i]), float(vals[i])
    # Newton polish on a central-difference derivative: Brent stops near sqrt(eps).
    for _ in range(3):
        h = 1e-5 * max(best, 1e-2)
        if best - h < lower:
            break
        f0, fp, fm = fun(best), fun(best + h), fun(best - h)
        d1, d2 = (fp - fm) / (2 * h), (fp - 2 * f0 + fm) / h**2
        if d2 <= 0:
            break
        cand = max(best - d1 / d2, lower)
        if fun(cand) <= fbest:
            best, fbest = cand, fun(cand)
        else:
            break
    if fun(lower) <= fbest:
        best = lower
    return best, bool(res.success)


def _minimise_intercept(st: SufficientStats, reml: bool) -> tuple[float, float, bool]:
    """Vectorised grid over theta, then safeguarded Newton on the closed-form slope in s = theta^2.

    Returns theta, lme4's Hessian-scaled gradient at it and whether the search converged.
    """
    grid = np.r_[0.0, np.geomspace(1e-3, 1e2, 16)]
    vals = intercept_deviances(grid, st, reml)
    i = int(np.argmin(vals))
    lo, hi = grid[max(i - 1, 0)] ** 2, grid[min(i + 1, len(grid) - 1)] ** 2
    x = grid[i] ** 2
    for _ in range(100):
        d1, d2 = intercept_derivatives(x, st, reml)
        if x == 0.0 and d1 >= 0.0:
            return 0.0, 0.0, True  # the deviance is even in theta: zero gradient, rising away from the boundary
        step = d1 / d2 if d2 > 0 else np.inf
        if abs(step) <= 1e-12 * x:
            break
        lo, hi = (x, hi) if d1 < 0 else (lo, x)
        x = x - step if lo < x - step < hi else 0.5 * (lo + hi)  # bisect when Newton leaves the bracket
    else:
        d2 = -1.0
    t = float(np.sqrt(x))
    if d2 <= 0 or not grid[max(i - 1, 0)] < t < grid[min(i + 1, len(grid) - 1)]:
        # No interior minimum around the grid's best point (a flat or ragged criterion): search the deviance itself.
        t, ok = _minimise_scalar(lambda t: deviance(np.array([t]), st, reml))
        return (t, *_intercept_convergence(t, st, reml)) if ok else (t, np.inf, False)
    if vals[0] <= deviance(np.array([t]), st, reml):
        return 0.0, *_intercept_convergence(0.0, st, reml)
    return t, *_scaled_gradient(t, x, d1, d2)


def _intercept_convergence(t: float, st: SufficientStats, reml: bool) -> tuple[float, bool]:
    """lme4's Hessian-scaled gradient in theta, from the closed-form derivatives in s = theta^2."""
    if t <= SINGULAR_TOL * 1e-3:
        # The deviance is even in theta, so its gradient is zero here; a minimum needs a non-negative slope.
        return 0.0, intercept_derivatives(0.0, st, reml)[0] >= -1e-6
    s = t * t
    return _scaled_gradient(t, s, *intercept_derivatives(s, st, reml))


def _scaled_gradient(t: float, s: float, d1: float, d2: float) -> tuple[float, bool]:
    """|gradient| / sqrt(Hessian) in theta from the derivatives in s = theta^2 (chain rule)."""
    grad, hess = 2 * t * d1, 2 * d1 + 4 * s * d2
    if hess <= 0:
        return abs(grad), False
    gmax = abs(grad) / np.sqrt(hess)
    return float(gmax), bool(gmax < GRADIENT_TOL)


def _gradient(fun, x: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Central differences, forward at an active lower bound (deviance is even in theta)."""
    g = np.empty_like(x)
    for k in range(len(x)):
        h = 1e-6 * max(abs(x[k]), 1e-2)
        e = np.zeros_like(x)
        e[k] = h
        if x[k] - h < lower[k]:
            g[k] = (fun(x + e) - fun(x)) / h
        else:
            g[k] = (fun(x + e) - fun(x - e)) / (2 * h)
    return g


def _minimise_vector(fun, q: int) -> tuple[np.ndarray, bool]:
    lower = theta_lower_bounds(q)
    start = theta_to_lambda_start(q)
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    best = None
    for x0 in (start, start * 0.5, start * 2.0):
        res = optimize.minimize(
            fun,
            x0,
            jac=lambda x: _gradient(fun, x, lower),
            method="L-BFGS-B",
            bounds=bounds,
            options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000},
        )
        if best is None or res.fun < best.fun:
            best = res
    return np.asarray(best.x, dtype=float), bool(best.success)


def theta_to_lambda_start(q: int) -> np.ndarray:
    """lme4's starting value: Lambda = I."""
    return np.where(np.isfinite(theta_lower_bounds(q)), 1.0, 0.0)


def _convergence(fun, theta: np.ndarray, q: int) -> tuple[float, bool]:
    """lme4-style check: Hessian-scaled gradient over the interior parameters."""
    lower = theta_lower_bounds(q)
    free = ~(theta <= lower + SINGULAR_TOL * 1e-3)
    if not free.any():
        g = _gradient(fun, theta, lower)
        return float(np.max(np.abs(np.minimum(g, 0.0)))), bool(np.all(g >= -1e-6))
    g = _gradient(fun, theta, lower)[free]
    idx = np.flatnonzero(free)
    k = len(idx)
    H = np.empty((k, k))
    for a in range(k):
        e = np.zeros_like(theta)
        e[idx[a]] = 1e-4 * max(abs(theta[idx[a]]), 1e-2)
        H[a] = (_gradient(fun, theta + e, lower)[free] - _gradient(fun, theta - e, lower)[free]) / (2 * e[idx[a]])
    H = (H + H.T) / 2
    try:
        scaled = np.linalg.solve(np.linalg.cholesky(H), g)
    except np.linalg.LinAlgError:
        return float(np.max(np.abs(g))), False
    gmax = float(np.max(np.abs(scaled)))
    return gmax, gmax < GRADIENT_TOL


def fit_lmm(data: ModelData, reml: bool = True) -> LMMFit:
    """Fit by minimising lme4's profiled (RE)ML deviance over theta."""
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
        t, gmax, conv_ok = _minimise_intercept(st, reml)
        theta, ok = np.array([t]), conv_ok
    else:
        theta, ok = _minimise_vector(fun, data.q)
        gmax, conv_ok = _convergence(fun, theta, data.q)
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
    converged: bool,
    gradient_max: float,
    notes: list[str],
) -> LMMFit:
    """The fit at a given theta: beta, sigma and Var(beta) profiled exactly, boundary flagged."""
    pr = profile(theta, st)
    dof = data.n - data.p if reml else data.n
    sigma = float(np.sqrt(pr.pwrss / dof))
    singular = bool(np.any(theta[np.isfinite(theta_lower_bounds(data.q))] < SINGULAR_TOL))
    boundary = ["boundary (singular) fit: a random-effect variance is estimated at zero"] if singular else []
    return LMMFit(
        data=data,
        stats=st,
        reml=reml,
        theta=theta,
        beta=pr.beta,
        sigma=sigma,
        vcov=sigma**2 * np.linalg.inv(pr.xtvx),
        criterion=deviance(theta, st, reml),
        converged=converged,
        singular=singular,
        gradient_max=gradient_max,
        warnings=boundary + notes,
    )
