"""The random-intercept (RE)ML criterion of many outcomes, from per-cluster-size statistics.

Each outcome k is y_k = X_k beta_k + b_k[participant] + e_k with its own missing rows (NaN in
column k of Y), b ~ N(0, sigma_k^2 lambda_k) and e ~ N(0, sigma_k^2). X is shared by every
outcome (a panel of analytes) or given per outcome (re-randomised arm labels). With beta and
sigma profiled out, the (RE)ML criterion depends on lambda only through h_g = 1/(1 + lambda n_g),
and h_g takes one value per cluster size n_g. So the data reduce, per outcome, to one
(p+1) x (p+1) cross-product S_v = sum over participants with v rows of R_g R_g' (R_g: column
sums of [X, y]) for each size v, and one evaluation costs O(T p^2) flops for T visits, whatever
the number of participants. The criterion and its first two derivatives in lambda are closed form
(Harville 1977); models.optimise minimises it, models.batch turns the optimum into fits.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from pnitrial.models.linalg import chol, chol_solve, colsum, dot, vsum

__all__ = [
    "BatchProfile",
    "BatchStats",
    "LambdaDerivatives",
    "batch_deviance",
    "batch_profile",
    "batch_stats",
    "criterion_derivatives",
    "criterion_dof",
    "rank_deficient",
    "lambda_derivatives",
    "profiled_deviance",
]


@dataclass(frozen=True)
class BatchStats:
    """Per-outcome sufficient statistics; arrays lead with the outcome axis K.

    y* is y minus its OLS fit, which keeps the cross-products well scaled.

    Parameters
    ----------
    sizes : ndarray, shape (V,)
        Cluster sizes 1..T.
    count : ndarray, shape (K, V)
        Participants with that many rows.
    S : ndarray, shape (K, V, p + 1, p + 1)
        Sum of R_g R_g' over those participants, R_g the column sums of [X, y*].
    XtX : ndarray, shape (K, p, p)
    Xty : ndarray, shape (K, p)
        X'y*.
    yty : ndarray, shape (K,)
        y*'y*.
    beta_ols : ndarray, shape (K, p)
    n : ndarray, shape (K,)
        Observations.
    m : ndarray, shape (K,)
        Participants with at least one observation.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(6), 2); t = np.tile([0.0, 1.0], 6)
    >>> X = np.column_stack([np.ones(12), t, (g < 3) * t])
    >>> Y = 5 + rng.normal(size=(6, 2))[g] + rng.normal(size=(12, 2))
    >>> Y[7, 1] = np.nan  # outcome 1 misses participant 3's second visit
    >>> st, _ = batch_stats(X, g, Y)
    >>> st.sizes.tolist(), st.count.tolist(), st.n.tolist(), st.p
    ([1.0, 2.0], [[0.0, 6.0], [1.0, 5.0]], [12.0, 11.0], 3)
    >>> st.take(np.array([1])).n.tolist()
    [11.0]
    """

    sizes: np.ndarray  # (V,) cluster sizes 1..T
    count: np.ndarray  # (K, V) participants with that many rows
    S: np.ndarray  # (K, V, p+1, p+1) sum of R_g R_g' over those participants, R_g = sums of [X, y*]
    XtX: np.ndarray  # (K, p, p)
    Xty: np.ndarray  # (K, p)  X'y*
    yty: np.ndarray  # (K,)    y*'y*
    beta_ols: np.ndarray  # (K, p)
    n: np.ndarray  # (K,) observations
    m: np.ndarray  # (K,) participants with at least one observation

    @property
    def p(self) -> int:
        """Number of fixed effects."""
        return self.XtX.shape[-1]

    def take(self, idx: np.ndarray) -> BatchStats:
        """The statistics of outcomes `idx` (an index array), sizes shared."""
        return BatchStats(self.sizes, *(getattr(self, f.name)[idx] for f in fields(self)[1:]))


def batch_stats(X: np.ndarray, group: np.ndarray, Y: np.ndarray) -> tuple[BatchStats, np.ndarray]:
    """Sufficient statistics of every column of Y; returns them and a rank-deficiency mask.

    X is (n, p), shared, or (K, n, p), one design per outcome; rows sorted by participant.
    Work arrays are (n, K): rows leading, outcomes contiguous, so every reduction is a
    vectorised pass over rows.

    Parameters
    ----------
    X : ndarray, shape (n, p) or (K, n, p)
        Fixed-effects design, shared or one per outcome.
    group : ndarray, shape (n,)
        Participant codes, non-decreasing.
    Y : ndarray, shape (n, K)
        One outcome per column, NaN where missing.

    Returns
    -------
    BatchStats
        The statistics of every outcome.
    ndarray of bool, shape (K,)
        Outcomes whose design (over their observed rows) is rank deficient.

    Raises
    ------
    ValueError
        Rows not sorted by participant.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(6), 2); t = np.tile([0.0, 1.0], 6)
    >>> X = np.column_stack([np.ones(12), t, (g < 3) * t])
    >>> Y = 5 + rng.normal(size=(6, 2))[g] + rng.normal(size=(12, 2))
    >>> Y[7, 1] = np.nan  # outcome 1 misses participant 3's second visit
    >>> st, deficient = batch_stats(X, g, Y)
    >>> st.n.tolist(), st.m.tolist(), deficient.tolist(), st.S.shape
    ([12.0, 11.0], [6.0, 6.0], [False, False], (2, 2, 4, 4))
    """
    if np.any(np.diff(group) < 0):
        raise ValueError("rows must be sorted by participant")
    W = np.isfinite(Y)
    Wf = W.astype(float)
    Y0 = np.where(W, Y, 0.0)
    K, p = Y.shape[1], X.shape[-1]
    Xt = None if X.ndim == 2 else np.ascontiguousarray(X.transpose(1, 0, 2))  # (n, K, p)

    def col(a: int) -> np.ndarray:  # column a of X with missing rows zeroed, (n, K)
        return Wf * X[:, a, None] if Xt is None else Wf * Xt[:, :, a]

    cols = [col(a) for a in range(p)]
    Xall = X[:, None, :] if Xt is None else Xt  # (n, 1 or K, p)
    # one row of X'X per column: sums run over rows in order, so every entry has the bits of a scalar loop
    XtX = np.stack([colsum(c[:, :, None] * Xall) for c in cols], axis=1)
    Xty_raw = np.stack([colsum(c * Y0) for c in cols], axis=1)
    deficient = rank_deficient(XtX)
    safe = np.where(deficient[:, None, None], np.eye(p), XtX)
    beta_ols = np.where(deficient[:, None], 0.0, chol_solve(chol(safe), Xty_raw))
    fitted = cols[0] * beta_ols[:, 0]
    for a in range(1, p):
        fitted += cols[a] * beta_ols[:, a]
    ystar = np.where(W, Y0 - fitted, 0.0)  # (n, K)
    starts = np.flatnonzero(np.r_[True, np.diff(group) != 0])
    R = [np.add.reduceat(c, starts, axis=0) for c in (*cols, ystar)]  # p+1 arrays (m, K)
    Rall = np.stack(R, axis=2)  # (m, K, p+1)
    ng = np.add.reduceat(Wf, starts, axis=0).astype(int)  # (m, K)
    sizes = np.arange(1, max(int(ng.max(initial=0)), 1) + 1)
    S = np.empty((K, len(sizes), p + 1, p + 1))
    for iv, v in enumerate(sizes):
        sel = (ng == v).astype(float)
        for i in range(p + 1):
            S[:, iv, i, :] = colsum((R[i] * sel)[:, :, None] * Rall)
    st = BatchStats(
        sizes=sizes.astype(float),
        count=np.stack([colsum((ng == v).astype(float)) for v in sizes], axis=1),
        S=S,
        XtX=XtX,
        Xty=np.stack([colsum(c * ystar) for c in cols], axis=1),
        yty=colsum(ystar * ystar),
        beta_ols=beta_ols,
        n=colsum(Wf),
        m=colsum((ng > 0).astype(float)),
    )
    return st, deficient


def rank_deficient(XtX: np.ndarray) -> np.ndarray:
    """Which of a stack of cross-products X'X (K, p, p) are numerically singular (eigenvalue ratio 1e-10 p).

    Examples
    --------
    >>> rank_deficient(np.array([np.eye(2), [[1.0, 1.0], [1.0, 1.0]]])).tolist()
    [False, True]
    """
    ev = np.linalg.eigvalsh(XtX)
    return ev[:, 0] <= 1e-10 * XtX.shape[-1] * np.maximum(ev[:, -1], 0)


@dataclass
class BatchProfile:
    """Generalised least squares at lambda for every outcome.

    V is the covariance of y relative to sigma^2: I + lambda 11' within each participant.

    Parameters
    ----------
    lam : ndarray, shape (K,)
        lambda = theta^2, the random-intercept variance over the residual variance.
    h : ndarray, shape (K, V)
        1 / (1 + lambda v) per cluster size v.
    C : ndarray, shape (K, p, p)
        X'V^-1X.
    L : ndarray, shape (K, p, p)
        Cholesky factor of C.
    beta_star : ndarray, shape (K, p)
        GLS coefficients of y* (add beta_ols for those of y).
    pwrss : ndarray, shape (K,)
        y'Py, the penalised weighted residual sum of squares.
    logdet_v, logdet_c : ndarray, shape (K,)
        log|V| and log|X'V^-1X|.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(6), 2); t = np.tile([0.0, 1.0], 6)
    >>> X = np.column_stack([np.ones(12), t, (g < 3) * t])
    >>> Y = 5 + rng.normal(size=(6, 2))[g] + rng.normal(size=(12, 2))
    >>> Y[7, 1] = np.nan  # outcome 1 misses participant 3's second visit
    >>> st, _ = batch_stats(X, g, Y)
    >>> pr = batch_profile(np.array([1.0, 1.0]), st)
    >>> pr.h.round(6).tolist(), pr.pwrss.round(6).tolist()
    ([[0.5, 0.333333], [0.5, 0.333333]], [7.125893, 4.29459])
    """

    lam: np.ndarray  # (K,)
    h: np.ndarray  # (K, V) 1 / (1 + lambda v)
    C: np.ndarray  # (K, p, p) X'V^-1X (V relative to sigma^2)
    L: np.ndarray  # its Cholesky factor
    beta_star: np.ndarray  # (K, p) GLS coefficients of y*
    pwrss: np.ndarray  # (K,) y'Py
    logdet_v: np.ndarray  # (K,) log|V|
    logdet_c: np.ndarray  # (K,) log|X'V^-1X|


def batch_profile(lam: np.ndarray, st: BatchStats) -> BatchProfile:
    """GLS of every outcome at its lambda, by Woodbury per participant: V_g^-1 = I - lambda h_g 11'.

    Parameters
    ----------
    lam : ndarray, shape (K,)
        lambda = theta^2 per outcome.
    st : BatchStats
        The outcomes' sufficient statistics.

    Returns
    -------
    BatchProfile
        GLS coefficients, residual sum of squares and log-determinants.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(6), 2); t = np.tile([0.0, 1.0], 6)
    >>> X = np.column_stack([np.ones(12), t, (g < 3) * t])
    >>> Y = 5 + rng.normal(size=(6, 2))[g] + rng.normal(size=(12, 2))
    >>> Y[7, 1] = np.nan  # outcome 1 misses participant 3's second visit
    >>> st, _ = batch_stats(X, g, Y)
    >>> pr = batch_profile(np.array([0.0, 1.0]), st)
    >>> bool(np.allclose(pr.beta_star[0] + st.beta_ols[0], np.linalg.lstsq(X, Y[:, 0], rcond=None)[0]))
    True
    >>> import math
    >>> round(float(pr.logdet_v[1]), 6), round(5 * math.log(3) + math.log(2), 6)  # five pairs and one single
    (6.186209, 6.186209)
    """
    p = st.p
    h = 1.0 / (1.0 + lam[:, None] * st.sizes)
    corr = vsum(lam[:, None] * h, st.S)
    C = st.XtX - corr[:, :p, :p]
    xvy = st.Xty - corr[:, :p, p]
    yvy = st.yty - corr[:, p, p]
    L = chol(C)
    beta_star = chol_solve(L, xvy)
    pwrss = np.maximum(yvy - dot(beta_star, xvy), 0.0)
    logdet_c = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
    logdet_v = -(st.count * np.log(h)).sum(axis=1)
    return BatchProfile(lam, h, C, L, beta_star, pwrss, logdet_v, logdet_c)


def criterion_dof(st: BatchStats, reml: bool) -> np.ndarray:
    """n - p under REML, n under ML: the residual degrees of freedom of the profiled criterion.

    Parameters
    ----------
    st : BatchStats
        The outcomes' sufficient statistics.
    reml : bool
        REML or maximum likelihood.

    Returns
    -------
    ndarray, shape (K,)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(6), 2); t = np.tile([0.0, 1.0], 6)
    >>> X = np.column_stack([np.ones(12), t, (g < 3) * t])
    >>> Y = 5 + rng.normal(size=(6, 2))[g] + rng.normal(size=(12, 2))
    >>> Y[7, 1] = np.nan  # outcome 1 misses participant 3's second visit
    >>> st, _ = batch_stats(X, g, Y)
    >>> criterion_dof(st, True).tolist(), criterion_dof(st, False).tolist()
    ([9.0, 8.0], [12.0, 11.0])
    """
    return st.n - st.p if reml else st.n


def profiled_deviance(pr: BatchProfile, st: BatchStats, reml: bool) -> np.ndarray:
    """lme4's profiled deviance: log|V| + dof (1 + log(2 pi pwrss / dof)) [+ log|X'V^-1X|].

    -2 log-likelihood (or restricted log-likelihood) with beta and sigma profiled out
    (Bates et al. 2015, J Stat Softw 67(1), eqs. 34 and 41).

    Parameters
    ----------
    pr : BatchProfile
        GLS at the outcomes' lambda.
    st : BatchStats
        The outcomes' sufficient statistics.
    reml : bool
        REML (adds log|X'V^-1X|, dof n - p) or ML (dof n).

    Returns
    -------
    ndarray, shape (K,)
        The criterion lme4 reports as REMLcrit or deviance.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(6), 2); t = np.tile([0.0, 1.0], 6)
    >>> X = np.column_stack([np.ones(12), t, (g < 3) * t])
    >>> Y = 5 + rng.normal(size=(6, 2))[g] + rng.normal(size=(12, 2))
    >>> Y[7, 1] = np.nan  # outcome 1 misses participant 3's second visit
    >>> st, _ = batch_stats(X, g, Y)
    >>> profiled_deviance(batch_profile(np.array([1.0, 1.0]), st), st, reml=True).round(4).tolist()
    [32.5161, 25.992]
    """
    dof = criterion_dof(st, reml)
    with np.errstate(divide="ignore"):
        dev = pr.logdet_v + dof * (1.0 + np.log(2.0 * np.pi * pr.pwrss / dof))
    return dev + (pr.logdet_c if reml else 0.0)


def batch_deviance(lam: np.ndarray, st: BatchStats, reml: bool = True) -> np.ndarray:
    """The profiled (RE)ML criterion of every outcome at its lambda.

    Parameters
    ----------
    lam : ndarray, shape (K,)
        lambda = theta^2 per outcome.
    st : BatchStats
        The outcomes' sufficient statistics.
    reml : bool
        REML (default) or maximum likelihood.

    Returns
    -------
    ndarray, shape (K,)
        `profiled_deviance` of `batch_profile(lam, st)`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(6), 2); t = np.tile([0.0, 1.0], 6)
    >>> X = np.column_stack([np.ones(12), t, (g < 3) * t])
    >>> Y = 5 + rng.normal(size=(6, 2))[g] + rng.normal(size=(12, 2))
    >>> Y[7, 1] = np.nan  # outcome 1 misses participant 3's second visit
    >>> st, _ = batch_stats(X, g, Y)
    >>> batch_deviance(np.array([1.0, 1.0]), st).round(4).tolist()
    [32.5161, 25.992]
    >>> batch_deviance(np.array([1.0, 1.0]), st, reml=False).round(4).tolist()
    [34.3921, 27.0569]
    """
    return profiled_deviance(batch_profile(lam, st), st, reml)


@dataclass
class LambdaDerivatives:
    """Derivatives in lambda of f = log|V| (+ log|X'V^-1X| under REML) and r = y'Py, G = ZZ'.

    f' = tr(PG) [ML: tr(V^-1 G)], f'' = -tr(PGPG) [ML: -tr(V^-1 G V^-1 G)],
    r' = -y'PGPy, r'' = 2 y'PGPGPy; UtU = X'V^-1 G V^-1 X = -dC/dlambda.

    Parameters
    ----------
    f1, f2 : ndarray, shape (K,)
        First and second derivative of f.
    r : ndarray, shape (K,)
        y'Py (pwrss).
    r1, r2 : ndarray, shape (K,)
        First and second derivative of r.
    UtU : ndarray, shape (K, p, p)
        X'V^-1 G V^-1 X.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(6), 2); t = np.tile([0.0, 1.0], 6)
    >>> X = np.column_stack([np.ones(12), t, (g < 3) * t])
    >>> Y = 5 + rng.normal(size=(6, 2))[g] + rng.normal(size=(12, 2))
    >>> Y[7, 1] = np.nan  # outcome 1 misses participant 3's second visit
    >>> st, _ = batch_stats(X, g, Y)
    >>> der = lambda_derivatives(batch_profile(np.array([1.0, 1.0]), st), st)
    >>> der.f1.round(6).tolist(), der.r1.round(6).tolist(), der.UtU.shape
    ([3.166667, 3.0], [-3.401484, -1.714848], (2, 3, 3))
    """

    f1: np.ndarray
    f2: np.ndarray
    r: np.ndarray
    r1: np.ndarray
    r2: np.ndarray
    UtU: np.ndarray


def lambda_derivatives(pr: BatchProfile, st: BatchStats, reml: bool = True) -> LambdaDerivatives:
    """Closed-form derivatives of the profiled criterion's pieces (Harville 1977, JASA 72:320).

    Parameters
    ----------
    pr : BatchProfile
        GLS at the outcomes' lambda.
    st : BatchStats
        The outcomes' sufficient statistics.
    reml : bool
        REML (default) or maximum likelihood.

    Returns
    -------
    LambdaDerivatives
        First and second derivatives in lambda of log-determinants and y'Py.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(6), 2); t = np.tile([0.0, 1.0], 6)
    >>> X = np.column_stack([np.ones(12), t, (g < 3) * t])
    >>> Y = 5 + rng.normal(size=(6, 2))[g] + rng.normal(size=(12, 2))
    >>> Y[7, 1] = np.nan  # outcome 1 misses participant 3's second visit
    >>> st, _ = batch_stats(X, g, Y)
    >>> der = lambda_derivatives(batch_profile(np.array([1.0, 1.0]), st), st)
    >>> der.r.round(6).tolist(), der.f2.round(6).tolist()
    ([7.125893, 4.29459], [-2.027778, -1.833333])
    """
    p, v, h = st.p, st.sizes, pr.h
    a = np.concatenate([-pr.beta_star, np.ones((len(h), 1))], axis=1)  # residual direction
    Sa = dot(st.S, a[:, None, None, :])
    aSa = dot(Sa, a[:, None, :])  # sum of (c_g - B_g'beta*)^2 by cluster size
    h2 = h * h
    SB = st.S[:, :, :p, :p]
    UtU = vsum(h2, SB)
    Uts = vsum(h2, Sa[:, :, :p])
    Cinv_Uts = chol_solve(pr.L, Uts)
    r1 = -(h2 * aSa).sum(axis=1)
    r2 = 2.0 * ((v * h2 * h * aSa).sum(axis=1) - dot(Uts, Cinv_Uts))
    sum_d = (st.count * v * h).sum(axis=1)
    sum_d2 = (st.count * (v * h) ** 2).sum(axis=1)
    if not reml:
        return LambdaDerivatives(sum_d, -sum_d2, pr.pwrss, r1, r2, UtU)
    CM = chol_solve(pr.L, UtU)
    CD = chol_solve(pr.L, vsum(v * h2 * h, SB))
    f1 = sum_d - np.trace(CM, axis1=1, axis2=2)
    f2 = -(sum_d2 - 2.0 * np.trace(CD, axis1=1, axis2=2) + (CM * np.swapaxes(CM, 1, 2)).sum(axis=(1, 2)))
    return LambdaDerivatives(f1, f2, pr.pwrss, r1, r2, UtU)


def criterion_derivatives(der: LambdaDerivatives, dof: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and second derivative in lambda of f + dof log r (the profiled criterion).

    Parameters
    ----------
    der : LambdaDerivatives
        Derivatives of the criterion's pieces.
    dof : ndarray, shape (K,)
        `criterion_dof` of the outcomes.

    Returns
    -------
    tuple of ndarray, shape (K,)
        d/dlambda and d^2/dlambda^2 of the profiled deviance (constants dropped).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(6), 2); t = np.tile([0.0, 1.0], 6)
    >>> X = np.column_stack([np.ones(12), t, (g < 3) * t])
    >>> Y = 5 + rng.normal(size=(6, 2))[g] + rng.normal(size=(12, 2))
    >>> Y[7, 1] = np.nan  # outcome 1 misses participant 3's second visit
    >>> st, _ = batch_stats(X, g, Y)
    >>> lam = np.array([1.0, 1.0])
    >>> d1, d2 = criterion_derivatives(lambda_derivatives(batch_profile(lam, st), st), criterion_dof(st, True))
    >>> d1.round(6).tolist()
    [-1.129407, -0.194435]
    >>> numeric = (batch_deviance(lam + 1e-5, st) - batch_deviance(lam - 1e-5, st)) / 2e-5
    >>> bool(np.allclose(d1, numeric, atol=1e-6))
    True
    """
    r = np.maximum(der.r, np.finfo(float).tiny)
    return der.f1 + dof * der.r1 / r, der.f2 + dof * (der.r2 / r - (der.r1 / r) ** 2)
