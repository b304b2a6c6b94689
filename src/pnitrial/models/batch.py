"""Exact (RE)ML fits of many random-intercept models in one vectorised call.

Each outcome k is y_k = X_k beta_k + b_k[participant] + e_k with its own missing rows (NaN in
column k of Y), b ~ N(0, sigma_k^2 lambda_k) and e ~ N(0, sigma_k^2). X is shared by every
outcome (a panel of analytes) or given per outcome (re-randomised arm labels). With beta and
sigma profiled out, the (RE)ML criterion depends on lambda only through h_g = 1/(1 + lambda n_g),
and h_g takes one value per cluster size n_g. So the data reduce, per outcome, to one
(p+1) x (p+1) cross-product S_v = sum over participants with v rows of R_g R_g' (R_g: column
sums of [X, y]) for each size v, and one evaluation costs O(T p^2) flops for T visits, whatever
the number of participants. The criterion and its first two derivatives in lambda are closed
form; a grid on theta = sqrt(lambda) (lme4's parameter) finds the basin of the global minimum
and a safeguarded Newton iteration polishes it. Every outcome keeps its own bracket and
stopping rule, so its result does not depend on which outcomes share its batch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from pnitrial.models.convergence import converged, singular
from pnitrial.models.linalg import chol, chol_inv, chol_solve, colsum, dot, vsum

THETA_GRID = np.r_[0.0, np.geomspace(1e-3, 1e2, 11)]
NEWTON_MAX = 60
# Newton stops when the step is this small relative to max(lambda, LAMBDA_FLOOR).
STEP_RTOL = 1e-12
LAMBDA_FLOOR = 1e-10
# Outcomes per internal block: keeps the (outcomes x participants x p) working set near 100 MB.
BLOCK_FLOATS = 12_000_000


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


# -- the profiled criterion and its derivatives -----------------------------------------------


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


def _dof(st: BatchStats, reml: bool) -> np.ndarray:
    return st.n - st.p if reml else st.n


def profiled_deviance(pr: BatchProfile, st: BatchStats, reml: bool) -> np.ndarray:
    """lme4's profiled deviance: log|V| + dof (1 + log(2 pi pwrss / dof)) [+ log|X'V^-1X|]."""
    dof = _dof(st, reml)
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


# -- optimisation -----------------------------------------------------------------------------


def _newton(st: BatchStats, reml: bool, lo: np.ndarray, hi: np.ndarray, lam: np.ndarray):
    """Safeguarded Newton on the criterion's derivative inside [lo, hi]; bisection when it misbehaves."""
    dof = _dof(st, reml)
    active = np.ones(len(lam), dtype=bool)
    for _ in range(NEWTON_MAX):
        idx = np.flatnonzero(active)
        if len(idx) == 0:
            break
        sub = st if len(idx) == len(lam) else st.take(idx)
        g, H = criterion_derivatives(lambda_derivatives(batch_profile(lam[idx], sub), sub, reml), dof[idx])
        x = lam[idx]
        lo_i = np.where(g < 0, x, lo[idx])  # the derivative's sign shrinks the bracket
        hi_i = np.where(g > 0, x, hi[idx])
        with np.errstate(divide="ignore", invalid="ignore"):
            cand = x - g / H
        bad = ~np.isfinite(cand) | (H <= 0) | (cand <= lo_i) | (cand >= hi_i)
        new = np.where(bad, np.where(lo_i > 0, np.sqrt(lo_i * hi_i), 0.5 * hi_i), cand)
        new = np.where(g == 0, x, new)
        done = np.abs(new - x) <= STEP_RTOL * np.maximum(x, LAMBDA_FLOOR)
        done |= hi_i - lo_i <= STEP_RTOL * np.maximum(hi_i, LAMBDA_FLOOR)
        lam[idx], lo[idx], hi[idx] = new, lo_i, hi_i
        active[idx[done]] = False
    return lam, ~active


def optimise_lambda(st: BatchStats, reml: bool) -> tuple[np.ndarray, np.ndarray]:
    """Grid on theta for the basin of the global minimum, then Newton in lambda."""
    K = len(st.n)
    grid_l = THETA_GRID**2
    G = len(grid_l)
    # all grid points in one batched call: outcome k's copies sit at rows k*G .. k*G+G-1
    devs = batch_deviance(np.tile(grid_l, K), st.take(np.repeat(np.arange(K), G)), reml).reshape(K, G)
    i = np.argmin(np.where(np.isfinite(devs), devs, np.inf), axis=1)
    # zero is the optimum when it is the best grid point and the criterion rises from it
    g0, _ = criterion_derivatives(lambda_derivatives(batch_profile(np.zeros(K), st), st, reml), _dof(st, reml))
    boundary = (i == 0) & (g0 >= 0)
    lam = np.zeros(K)
    ok = boundary.copy()
    inner = np.flatnonzero(~boundary)
    if len(inner):
        j = i[inner]
        lo = grid_l[np.maximum(j - 1, 0)]
        hi = grid_l[np.clip(j + 1, 1, len(grid_l) - 1)]
        start = np.where(j == 0, 0.5 * grid_l[1], grid_l[j])
        lam[inner], ok[inner] = _newton(st.take(inner), reml, lo, hi, start)
    worse = batch_deviance(lam, st, reml) > devs[np.arange(K), i]  # never leave a better grid point
    return np.where(worse, grid_l[i], lam), ok & ~worse


def scaled_gradient(lam: np.ndarray, st: BatchStats, reml: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """lme4's convergence check in theta (|g| / sqrt(H)); at zero, how steeply it falls away.

    Returns (scaled gradient, whether the point is a minimum).
    """
    g, H = criterion_derivatives(lambda_derivatives(batch_profile(lam, st), st, reml), _dof(st, reml))
    theta = np.sqrt(lam)
    g_t, H_t = 2 * theta * g, 2 * g + 4 * lam * H
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(lam > 0, np.abs(g_t) / np.sqrt(np.abs(H_t)), np.maximum(-g, 0.0))
    minimum = np.where(lam > 0, H_t > 0, g >= 0)
    return np.nan_to_num(scaled, nan=np.inf), minimum


# -- the fit ----------------------------------------------------------------------------------


@dataclass
class BatchFit:
    """Fits of K outcomes; an outcome that cannot be fitted has NaN estimates and an error."""

    reml: bool
    theta: np.ndarray  # (K,)
    beta: np.ndarray  # (K, p)
    sigma: np.ndarray  # (K,)
    vcov: np.ndarray  # (K, p, p)
    criterion: np.ndarray
    converged: np.ndarray
    singular: np.ndarray
    gradient: np.ndarray  # lme4's Hessian-scaled gradient at the optimum
    n_obs: np.ndarray
    n_participants: np.ndarray
    error: list[str]
    stats: BatchStats  # failed outcomes carry an identity design here
    profile: BatchProfile

    @property
    def var_participant(self) -> np.ndarray:
        return self.sigma**2 * self.theta**2

    @property
    def ok(self) -> np.ndarray:
        return np.array([e == "" for e in self.error], dtype=bool)


def fit_batch(X: np.ndarray, group: np.ndarray, Y: np.ndarray, reml: bool = True) -> BatchFit:
    """Fit y ~ X + (1 | group) to every column of Y (NaN = missing); rows sorted by group.

    X is (n, p) for a design shared by all outcomes or (K, n, p) for one design per outcome.
    """
    X = np.asarray(X, dtype=float)
    Y = np.asarray(Y, dtype=float)
    if Y.ndim == 1:
        Y = Y[:, None]
    K, (n, p) = Y.shape[1], X.shape[-2:]
    block = max(1, BLOCK_FLOATS // max(n * (p + 2), 1))
    parts = []
    for a in range(0, K, block):
        Xa = X if X.ndim == 2 else X[a : a + block]
        parts.append(_fit_columns(Xa, np.asarray(group), Y[:, a : a + block], reml))
    return parts[0] if len(parts) == 1 else _concat(parts)


def _fit_columns(X: np.ndarray, group: np.ndarray, Y: np.ndarray, reml: bool) -> BatchFit:
    K, p = Y.shape[1], X.shape[-1]
    st, deficient = batch_stats(X, group, Y)
    n_obs = st.n.astype(int)
    error = [
        f"{n_obs[k]} observations cannot estimate {p} fixed effects"
        if n_obs[k] <= p
        else ("fixed-effects design is rank deficient" if deficient[k] else "")
        for k in range(K)
    ]
    bad = np.array([e != "" for e in error], dtype=bool)
    st = _neutralised(st, bad)
    good = np.flatnonzero(~bad)
    lam = np.ones(K)  # failed outcomes are evaluated at a harmless point, then blanked
    ok = np.zeros(K, dtype=bool)
    grad = np.full(K, np.nan)
    if len(good):
        sub = st.take(good)
        lam[good], ok[good] = optimise_lambda(sub, reml)
        grad[good], minimum = scaled_gradient(lam[good], sub, reml)
        ok[good] &= converged(grad[good], minimum)
    pr = batch_profile(lam, st)
    s2 = pr.pwrss / _dof(st, reml)
    nan = np.where(bad, np.nan, 1.0)
    return BatchFit(
        reml=reml,
        theta=np.sqrt(lam) * nan,
        beta=(st.beta_ols + pr.beta_star) * nan[:, None],
        sigma=np.sqrt(s2) * nan,
        vcov=s2[:, None, None] * chol_inv(pr.L) * nan[:, None, None],
        criterion=profiled_deviance(pr, st, reml) * nan,
        converged=ok,
        singular=~bad & singular(np.sqrt(lam)),
        gradient=grad,
        n_obs=n_obs,
        n_participants=st.m.astype(int),
        error=error,
        stats=st,
        profile=pr,
    )


def _neutralised(st: BatchStats, bad: np.ndarray) -> BatchStats:
    """Failed outcomes get an identity design so the batched algebra stays finite."""
    if not bad.any():
        return st
    p = st.p
    XtX = np.where(bad[:, None, None], np.eye(p), st.XtX)
    S = np.where(bad[:, None, None, None], 0.0, st.S)
    yty = np.where(bad, 1.0, st.yty)
    n = np.where(bad, p + 2.0, st.n)
    return BatchStats(st.sizes, st.count, S, XtX, np.where(bad[:, None], 0.0, st.Xty), yty, st.beta_ols, n, st.m)


def _concat(parts: list[BatchFit]) -> BatchFit:
    V = max(len(f.stats.sizes) for f in parts)

    def pad(a: np.ndarray) -> np.ndarray:  # blocks may see different largest cluster sizes
        width = [(0, 0)] * a.ndim
        width[1] = (0, V - a.shape[1])
        return np.pad(a, width)

    st = BatchStats(
        np.arange(1, V + 1, dtype=float),
        *(
            np.concatenate(
                [pad(getattr(f.stats, x.name)) if x.name in ("count", "S") else getattr(f.stats, x.name) for f in parts]
            )
            for x in fields(BatchStats)[1:]
        ),
    )
    lam = np.concatenate([f.profile.lam for f in parts])  # exact; theta**2 would round
    simple = {
        x.name: np.concatenate([getattr(f, x.name) for f in parts])
        for x in fields(BatchFit)
        if x.name not in ("reml", "error", "stats", "profile")
    }
    return BatchFit(
        reml=parts[0].reml,
        error=[e for f in parts for e in f.error],
        stats=st,
        profile=batch_profile(lam, st),
        **simple,
    )
