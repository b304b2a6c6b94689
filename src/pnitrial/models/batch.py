"""Exact (RE)ML fits of many random-intercept models in one vectorised call.

The statistics and criterion are those of models.intercept, the optimiser that of models.optimise;
here the optimum becomes estimates, covariance matrices and a status per outcome. An outcome that
cannot be fitted (too few rows, rank-deficient design) gets NaN estimates and an error, and the
others are unaffected.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from pnitrial.models.intercept import (
    BatchProfile,
    BatchStats,
    batch_profile,
    batch_stats,
    criterion_dof,
    profiled_deviance,
    rank_deficient,
)
from pnitrial.models.linalg import chol_inv, dot
from pnitrial.models.optimise import converged, optimise_lambda, scaled_gradient, singular

__all__ = ["BatchFit", "fit_batch", "fit_deletions", "fit_rerandomised"]

# Outcomes per internal block: keeps the (outcomes x participants x p) working set near 100 MB.
BLOCK_FLOATS = 12_000_000


@dataclass
class BatchFit:
    """Fits of K outcomes; an outcome that cannot be fitted has NaN estimates and an error.

    Parameters
    ----------
    reml : bool
        REML or maximum likelihood.
    theta : ndarray, shape (K,)
        Random-intercept SD relative to the residual SD.
    beta : ndarray, shape (K, p)
        Fixed effects.
    sigma : ndarray, shape (K,)
        Residual SD.
    vcov : ndarray, shape (K, p, p)
        Covariance of beta-hat at the estimated variances.
    criterion : ndarray, shape (K,)
        lme4's REMLcrit or deviance.
    converged, singular : ndarray of bool, shape (K,)
        lme4's convergence check and boundary verdict.
    gradient : ndarray, shape (K,)
        lme4's Hessian-scaled gradient at the optimum.
    n_obs, n_participants : ndarray of int, shape (K,)
        Observations and participants used.
    error : list of str
        Why an outcome could not be fitted ("" for a fit).
    stats : BatchStats
        Sufficient statistics (failed outcomes carry an identity design).
    profile : BatchProfile
        GLS at the optimum.

    Attributes
    ----------
    gradient_max : ndarray
        `gradient`, under the name LMMFit uses.
    var_participant : ndarray
        Random-intercept variance sigma^2 theta^2.
    ok : ndarray of bool
        Outcomes without an error.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(6), 2); t = np.tile([0.0, 1.0], 6)
    >>> X = np.column_stack([np.ones(12), t, (g < 3) * t])
    >>> Y = 5 + rng.normal(size=(6, 2))[g] + rng.normal(size=(12, 2))
    >>> Y[7, 1] = np.nan
    >>> fit = fit_batch(X, g, np.column_stack([Y, np.full(12, np.nan)]))  # a third outcome with no data
    >>> fit.ok.tolist(), fit.error[2]
    ([True, True, False], '0 observations cannot estimate 3 fixed effects')
    >>> [float(f"{v:.4g}") for v in fit.var_participant[:2]], fit.n_obs.tolist()
    ([1.406, 0.6119], [12, 11, 0])
    """

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
    def gradient_max(self) -> np.ndarray:
        """The Hessian-scaled gradient (LMMFit's name for it)."""
        return self.gradient

    @property
    def var_participant(self) -> np.ndarray:
        """Random-intercept variance sigma^2 theta^2 per outcome."""
        return self.sigma**2 * self.theta**2

    @property
    def ok(self) -> np.ndarray:
        """Outcomes that were fitted (no error); they may still not have converged."""
        return np.array([e == "" for e in self.error], dtype=bool)


def fit_batch(X: np.ndarray, group: np.ndarray, Y: np.ndarray, reml: bool = True) -> BatchFit:
    """Fit y ~ X + (1 | group) to every column of Y (NaN = missing); rows sorted by group.

    X is (n, p) for a design shared by all outcomes or (K, n, p) for one design per outcome.
    Each outcome's fit is exactly the single-fit engine's (models.engine.fit_lmm) and does not
    depend on the others; large K is split into blocks of about 100 MB.

    Parameters
    ----------
    X : array_like, shape (n, p) or (K, n, p)
        Fixed-effects design(s).
    group : array_like, shape (n,)
        Participant codes, non-decreasing.
    Y : array_like, shape (n, K) or (n,)
        Outcomes, NaN where missing.
    reml : bool
        REML (default) or maximum likelihood.

    Returns
    -------
    BatchFit
        One fit per column of Y.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(6), 2); t = np.tile([0.0, 1.0], 6)
    >>> X = np.column_stack([np.ones(12), t, (g < 3) * t])
    >>> Y = 5 + rng.normal(size=(6, 2))[g] + rng.normal(size=(12, 2))
    >>> Y[7, 1] = np.nan
    >>> fit = fit_batch(X, g, Y)
    >>> [float(f"{v:.4g}") for v in fit.theta], [float(f"{v:.4g}") for v in fit.beta[:, 2]]
    ([1.757, 1.116], [0.8606, 0.5271])
    >>> fit.converged.tolist(), fit.singular.tolist(), fit.n_participants.tolist()
    ([True, True], [False, False], [6, 6])
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


def fit_deletions(X: np.ndarray, group: np.ndarray, y: np.ndarray, reml: bool = True, block: int = 2000) -> BatchFit:
    """Every leave-one-participant-out refit of y ~ X + (1 | group), as one batch (outcome k: k deleted).

    Exact case deletion (theta, beta and sigma re-estimated, Christensen, Pearson & Johnson 1992,
    Technometrics 34:38), without rebuilding a design per deletion: deleting participant g
    subtracts its row sums R_g from the statistics of its cluster size and its cross-products
    from X'X, X'y* and y*'y* (models.intercept), and the m deleted fits go through the batched
    optimiser in blocks of `block`. Time and memory are linear in the participants.

    Parameters
    ----------
    X : array_like, shape (n, p)
        Fixed-effects design.
    group : array_like, shape (n,)
        Participant codes 0..m-1, non-decreasing.
    y : array_like, shape (n,)
        The outcome, observed on every row.
    reml : bool
        REML (default) or maximum likelihood.
    block : int
        Deletions per vectorised block.

    Returns
    -------
    BatchFit
        Fit k is the model without participant k; equal to `fit_batch` on the reduced data.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(6), 2); t = np.tile([0.0, 1.0], 6)
    >>> X = np.column_stack([np.ones(12), t, (g < 3) * t])
    >>> y = 5 + rng.normal(size=6)[g] + rng.normal(size=12)
    >>> fits = fit_deletions(X, g, y)
    >>> keep = g != 2
    >>> again = fit_batch(X[keep], np.where(g[keep] > 2, g[keep] - 1, g[keep]), y[keep])
    >>> bool(np.allclose(fits.beta[2], again.beta[0], rtol=1e-9)), fits.n_obs.tolist()
    (True, [10, 10, 10, 10, 10, 10])
    """
    X, y, group = np.asarray(X, dtype=float), np.asarray(y, dtype=float), np.asarray(group)
    if not np.all(np.isfinite(y)):
        raise ValueError("fit_deletions needs an observed value on every row")
    st, _ = batch_stats(X, group, y[:, None])
    starts = np.flatnonzero(np.r_[True, np.diff(group) != 0])
    ystar = y - dot(X, np.broadcast_to(st.beta_ols[0], X.shape))  # fixed-order sums: no BLAS in the bits
    Xy = np.column_stack([X, ystar])
    R = np.add.reduceat(Xy, starts, axis=0)  # (m, p+1) each participant's row sums
    own = np.add.reduceat(Xy[:, :, None] * Xy[:, None, :], starts, axis=0)  # (m, p+1, p+1) own cross-products
    size = np.diff(np.r_[starts, len(y)])
    m, p = len(starts), X.shape[1]
    parts = []
    for a in range(0, m, block):
        g = np.arange(a, min(a + block, m))
        at = (st.sizes[None, :] == size[g, None]).astype(float)  # (k, V) the deleted cluster's size
        RR = R[g, :, None] * R[g, None, :]
        deleted = BatchStats(
            sizes=st.sizes,
            count=st.count - at,
            S=st.S - at[:, :, None, None] * RR[:, None],
            XtX=st.XtX - own[g, :p, :p],
            Xty=st.Xty - own[g, :p, p],
            yty=st.yty - own[g, p, p],
            beta_ols=np.repeat(st.beta_ols, len(g), axis=0),
            n=st.n - size[g],
            m=np.full(len(g), st.m[0] - 1.0),
        )
        parts.append(_fit_stats(deleted, rank_deficient(deleted.XtX), reml))
    return parts[0] if len(parts) == 1 else _concat(parts)


def fit_rerandomised(
    F: np.ndarray, G: np.ndarray, group: np.ndarray, y: np.ndarray, arms: np.ndarray, reml: bool = True
) -> BatchFit:
    """Fit y ~ X_k + (1 | group) for the designs X_k = F + a_k[group] G of re-randomised arm vectors a_k.

    F holds the columns that do not depend on the arm (zero in the others), G the arm-carrying
    columns with the arm set to 1 (zero elsewhere). Every statistic of models.intercept is affine
    in the participants' 0/1 arms (a^2 = a), so each re-randomisation's statistics are the
    observed-independent part plus one product of its arm vector with per-participant terms:
    no (K, n, p) design is built, and time and memory grow with K m, not K n p^2. y is centred
    by its fit on F's columns, which no re-randomisation changes.

    Parameters
    ----------
    F, G : ndarray, shape (n, p)
        The design's arm-free part and its arm-carrying part (arm = 1).
    group : ndarray, shape (n,)
        Participant codes 0..m-1, non-decreasing.
    y : ndarray, shape (n,)
        The outcome, observed on every row.
    arms : ndarray, shape (K, m)
        0/1 arm of each participant in each re-randomisation.
    reml : bool
        REML (default) or maximum likelihood.

    Returns
    -------
    BatchFit
        Fit k is that of design X_k (equal to `fit_batch` on it to rounding).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> g = np.repeat(np.arange(8), 2); t = np.tile([0.0, 1.0], 8); y = rng.normal(size=16) + t
    >>> F = np.column_stack([np.ones(16), t, np.zeros(16)]); G = np.column_stack([np.zeros((16, 2)), t])
    >>> arms = np.array([[1, 1, 1, 1, 0, 0, 0, 0], [1, 0, 1, 0, 1, 0, 1, 0]], dtype=float)
    >>> fits = fit_rerandomised(F, G, g, y, arms)
    >>> again = fit_batch(F + arms[1][g][:, None] * G, g, y)
    >>> bool(np.allclose(fits.beta[1], again.beta[0], rtol=1e-9)), fits.converged.tolist()
    (True, [True, True])
    """
    F, G, y, arms = (np.asarray(a, dtype=float) for a in (F, G, y, arms))
    group = np.asarray(group)
    K, p = len(arms), F.shape[1]
    free = np.flatnonzero(np.any(F != 0.0, axis=0))
    b = np.zeros(p)
    b[free] = np.linalg.lstsq(F[:, free], y, rcond=None)[0]
    ystar = y - dot(F, np.broadcast_to(b, F.shape))
    starts = np.flatnonzero(np.r_[True, np.diff(group) != 0])
    size = np.diff(np.r_[starts, len(y)])
    f, h = np.add.reduceat(F, starts, axis=0), np.add.reduceat(G, starts, axis=0)
    r = np.add.reduceat(ystar, starts)
    R0 = np.column_stack([f, r])
    R1 = np.column_stack([f + h, r])
    D = (R1[:, :, None] * R1[:, None, :] - R0[:, :, None] * R0[:, None, :]).reshape(len(r), -1)
    FG = F + G
    E = np.add.reduceat(FG[:, :, None] * FG[:, None, :] - F[:, :, None] * F[:, None, :], starts, axis=0)
    Gy = np.add.reduceat(G * ystar[:, None], starts, axis=0)
    sizes = np.arange(1, int(size.max()) + 1)
    V = len(sizes)
    S0 = np.stack([(R0[size == v].T @ R0[size == v]) for v in sizes])  # (V, p+1, p+1)
    S = np.empty((K, V, p + 1, p + 1))
    for iv, v in enumerate(sizes):
        sel = size == v
        S[:, iv] = S0[iv] + (arms[:, sel] @ D[sel]).reshape(K, p + 1, p + 1)
    st = BatchStats(
        sizes=sizes.astype(float),
        count=np.broadcast_to(np.array([np.sum(size == v) for v in sizes], dtype=float), (K, V)).copy(),
        S=S,
        XtX=F.T @ F + (arms @ E.reshape(len(r), -1)).reshape(K, p, p),
        Xty=F.T @ ystar + arms @ Gy,
        yty=np.full(K, float(ystar @ ystar)),
        beta_ols=np.broadcast_to(b, (K, p)).copy(),
        n=np.full(K, float(len(y))),
        m=np.full(K, float(len(r))),
    )
    return _fit_stats(st, rank_deficient(st.XtX), reml)


def _fit_columns(X: np.ndarray, group: np.ndarray, Y: np.ndarray, reml: bool) -> BatchFit:
    st, deficient = batch_stats(X, group, Y)
    return _fit_stats(st, deficient, reml)


def _fit_stats(st: BatchStats, deficient: np.ndarray, reml: bool) -> BatchFit:
    K, p = len(st.n), st.p
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
    s2 = pr.pwrss / criterion_dof(st, reml)
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
