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
    "lambda_derivatives",
    "profiled_deviance",
]


@dataclass(frozen=True)
class BatchStats:
    """Per-outcome sufficient statistics; arrays lead with the outcome axis K."""

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
        return self.XtX.shape[-1]

    def take(self, idx: np.ndarray) -> BatchStats:
        return BatchStats(self.sizes, *(getattr(self, f.name)[idx] for f in fields(self)[1:]))


def batch_stats(X: np.ndarray, group: np.ndarray, Y: np.ndarray) -> tuple[BatchStats, np.ndarray]:
    """Sufficient statistics of every column of Y; returns them and a rank-deficiency mask.

    X is (n, p), shared, or (K, n, p), one design per outcome; rows sorted by participant.
    Work arrays are (n, K): rows leading, outcomes contiguous, so every reduction is a
    vectorised pass over rows.
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
    ev = np.linalg.eigvalsh(XtX)
    deficient = ev[:, 0] <= 1e-10 * p * np.maximum(ev[:, -1], 0)
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


@dataclass
class BatchProfile:
    """Generalised least squares at lambda for every outcome."""

    lam: np.ndarray  # (K,)
    h: np.ndarray  # (K, V) 1 / (1 + lambda v)
    C: np.ndarray  # (K, p, p) X'V^-1X (V relative to sigma^2)
    L: np.ndarray  # its Cholesky factor
    beta_star: np.ndarray  # (K, p) GLS coefficients of y*
    pwrss: np.ndarray  # (K,) y'Py
    logdet_v: np.ndarray  # (K,) log|V|
    logdet_c: np.ndarray  # (K,) log|X'V^-1X|


def batch_profile(lam: np.ndarray, st: BatchStats) -> BatchProfile:
    """Woodbury per participant: V_g^-1 = I - lambda h_g 11'."""
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
    """n - p under REML, n under ML: the residual degrees of freedom of the profiled criterion."""
    return st.n - st.p if reml else st.n


def profiled_deviance(pr: BatchProfile, st: BatchStats, reml: bool) -> np.ndarray:
    """lme4's profiled deviance: log|V| + dof (1 + log(2 pi pwrss / dof)) [+ log|X'V^-1X|]."""
    dof = criterion_dof(st, reml)
    with np.errstate(divide="ignore"):
        dev = pr.logdet_v + dof * (1.0 + np.log(2.0 * np.pi * pr.pwrss / dof))
    return dev + (pr.logdet_c if reml else 0.0)


def batch_deviance(lam: np.ndarray, st: BatchStats, reml: bool = True) -> np.ndarray:
    return profiled_deviance(batch_profile(lam, st), st, reml)


@dataclass
class LambdaDerivatives:
    """Derivatives in lambda of f = log|V| (+ log|X'V^-1X| under REML) and r = y'Py, G = ZZ'.

    f' = tr(PG) [ML: tr(V^-1 G)], f'' = -tr(PGPG) [ML: -tr(V^-1 G V^-1 G)],
    r' = -y'PGPy, r'' = 2 y'PGPGPy; UtU = X'V^-1 G V^-1 X = -dC/dlambda.
    """

    f1: np.ndarray
    f2: np.ndarray
    r: np.ndarray
    r1: np.ndarray
    r2: np.ndarray
    UtU: np.ndarray


def lambda_derivatives(pr: BatchProfile, st: BatchStats, reml: bool = True) -> LambdaDerivatives:
    """Closed-form derivatives of the profiled criterion's pieces (Harville 1977, JASA 72:320)."""
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
    """First and second derivative in lambda of f + dof log r (the profiled criterion)."""
    r = np.maximum(der.r, np.finfo(float).tiny)
    return der.f1 + dof * der.r1 / r, der.f2 + dof * (der.r2 / r - (der.r1 / r) ** 2)
