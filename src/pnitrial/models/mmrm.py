"""Mixed models for repeated measures: y_i ~ N(X_i beta, Sigma_i), Sigma_i the visits-observed block of Sigma(theta).

The residual covariance over visits follows one of models.covariance's structures, parameterised as
R's mmrm parameterises it, and a participant with missing visits contributes the submatrix of its
observed visits (Mallinckrodt et al. 2008, Drug Inf J 42:303). beta is profiled out by generalised
least squares, so the (RE)ML criterion is a function of theta alone, and it is a sum over
missingness patterns: participants observed at the same visits share Sigma_i, and their data
reduce to cross-products. The criterion's gradient and Hessian are closed form given dSigma and
d2Sigma (Harville 1977, JASA 72:320); Newton's method minimises it. The same pieces (P, Q, R)
serve Kenward-Roger and Satterthwaite inference (inference.kenward_roger, inference.satterthwaite).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pnitrial.models.covariance import covariance, covariance_derivatives, n_theta, start, theta_from
from pnitrial.models.optimise import GRADIENT_TOL, trust_region_newton

__all__ = ["MMRMFit", "RepeatedData", "fit_mmrm", "mmrm_pieces", "weighted_qr"]


@dataclass(frozen=True)
class RepeatedData:
    """One outcome's repeated measures: rows sorted by participant, visits coded 0 .. T-1."""

    X: np.ndarray  # (n, p)
    y: np.ndarray  # (n,)
    group: np.ndarray  # (n,) participant codes 0..m-1, non-decreasing
    visit: np.ndarray  # (n,) visit index of each row
    n_visits: int
    fixed_names: tuple[str, ...]

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def m(self) -> int:
        return int(self.group[-1]) + 1 if self.n else 0


@dataclass(frozen=True)
class _Pattern:
    visits: np.ndarray  # (t,) observed visit indices
    X: np.ndarray  # (m, t, p)
    y: np.ndarray  # (m, t)


def _patterns(d: RepeatedData) -> list[_Pattern]:
    """Participants grouped by the visits at which they were observed."""
    if np.any(np.diff(d.group) < 0):
        raise ValueError("rows must be sorted by participant")
    starts = np.flatnonzero(np.r_[True, np.diff(d.group) != 0])
    ends = np.r_[starts[1:], d.n]
    by_key: dict[tuple[int, ...], list[int]] = {}
    for g, (a, b) in enumerate(zip(starts, ends, strict=True)):
        v = d.visit[a:b]
        if len(np.unique(v)) != len(v):
            raise ValueError("a participant has two rows at one visit")
        by_key.setdefault(tuple(int(x) for x in v), []).append(g)
    out = []
    for key in sorted(by_key, key=lambda k: (len(k), k)):
        rows = np.concatenate([np.arange(starts[g], ends[g]) for g in by_key[key]])
        t = len(key)
        out.append(_Pattern(np.array(key), d.X[rows].reshape(-1, t, d.p), d.y[rows].reshape(-1, t)))
    return out


@dataclass
class _Pieces:
    """The criterion at theta and, when asked, its derivatives and the P, Q, R of Kenward-Roger."""

    criterion: float
    beta: np.ndarray
    C: np.ndarray  # X' Sigma^-1 X
    gradient: np.ndarray | None = None
    hessian: np.ndarray | None = None
    P: np.ndarray | None = None  # (K, p, p) X' dSigma^-1/dtheta_k X
    d2: np.ndarray | None = None


def mmrm_pieces(
    theta: np.ndarray,
    data: RepeatedData,
    structure: str,
    reml: bool = True,
    order: int = 0,
    patterns=None,
) -> _Pieces:
    """-2 log-likelihood (REML or ML) at theta, with its gradient and P (order 1) and Hessian (order 2).

    Examples
    --------
    >>> import numpy as np
    >>> g = np.repeat(np.arange(4), 2); v = np.tile([0, 1], 4)
    >>> d = RepeatedData(np.ones((8, 1)), np.array([1.0, 1.5, 2.0, 2.2, 0.4, 1.1, 1.3, 1.9]), g, v, 2, ("(Intercept)",))
    >>> pieces = mmrm_pieces(np.zeros(3), d, "us", order=1)
    >>> pieces.gradient.shape
    (3,)
    """
    pats = patterns if patterns is not None else _patterns(data)
    T, p = data.n_visits, data.p
    with np.errstate(over="ignore", invalid="ignore"):
        Sig = covariance(theta, structure, T)
    K = len(theta)
    if not np.all(np.isfinite(Sig)):
        return _Pieces(np.inf, np.full(p, np.nan), np.full((p, p), np.nan))
    per = []
    logdet = 0.0
    C = np.zeros((p, p))
    Xy = np.zeros(p)
    for pat in pats:
        v = pat.visits
        S_full = Sig[np.ix_(v, v)]
        try:
            L = np.linalg.cholesky(S_full)
        except np.linalg.LinAlgError:
            return _Pieces(np.inf, np.full(p, np.nan), np.full((p, p), np.nan))
        S = np.linalg.inv(S_full)
        S = (S + S.T) / 2
        SX = np.einsum("tu,mua->mta", S, pat.X)
        logdet += len(pat.y) * 2.0 * np.log(np.diagonal(L)).sum()
        C += np.einsum("mta,mtb->ab", pat.X, SX)
        Xy += np.einsum("mta,mt->a", SX, pat.y)
        per.append((v, S, SX))
    try:
        Lc = np.linalg.cholesky(C)
        beta = np.linalg.solve(C, Xy)
    except np.linalg.LinAlgError:
        return _Pieces(np.inf, np.full(p, np.nan), np.full((p, p), np.nan))
    quad = 0.0
    E_all = []
    for pat, (_v, S, _SX) in zip(pats, per, strict=True):
        r = pat.y - pat.X @ beta
        e = r @ S  # rows S r_i (S symmetric)
        quad += float(np.sum(e * r))
        E_all.append(e)
    n = data.n
    dof = n - p if reml else n
    crit = logdet + quad + dof * np.log(2 * np.pi) + (2.0 * np.log(np.diagonal(Lc)).sum() if reml else 0.0)
    out = _Pieces(float(crit), beta, C)
    if order == 0:
        return out
    d1, d2 = covariance_derivatives(np.asarray(theta, dtype=float), structure, T, second=order >= 2)
    Cinv = np.linalg.inv(C)
    grad = np.zeros(K)
    Pm = np.zeros((K, p, p))
    h = np.zeros((K, p))
    # terms linear in a pattern's T x T matrices are summed over patterns first, then contracted once
    S_sum, E_sum, g2_sum = (np.zeros((T, T)) for _ in range(3))
    bilinear = np.zeros((K, K))  # -tr(S A_k S A_l) + 2 tr(A_k S A_l E) + 2 tr(A_k S A_l g2) [REML]
    for pat, (v, S, SX), e in zip(pats, per, E_all, strict=True):
        m = len(pat.y)
        A = d1[:, v][:, :, v]  # (K, t, t)
        G = np.einsum("mta,mub->tuab", SX, SX)
        E = e.T @ e  # sum of e_i e_i'
        W = np.einsum("mta,mu->tua", SX, e)
        grad += m * np.einsum("tu,kut->k", S, A) - np.einsum("ktu,ut->k", A, E)
        t = len(v)
        A_flat = A.reshape(K, t * t)
        Pm -= (A_flat @ G.reshape(t * t, p * p)).reshape(K, p, p)
        h += A_flat @ W.reshape(t * t, p)
        if order >= 2:
            ix = np.ix_(v, v)
            g2 = (G.reshape(t * t, p * p) @ Cinv.T.reshape(-1)).reshape(t, t)
            S_sum[ix] += m * S
            E_sum[ix] += E
            if reml:
                g2_sum[ix] += g2
            SA = S @ A  # (K, t, t)
            X = 2 * (SA @ E) + (2 * (SA @ g2) if reml else 0.0)
            bilinear += _pair_traces(A, X) - m * _pair_traces(SA, SA)
    if reml:
        grad += np.einsum("ab,kba->k", Cinv, Pm)
    out.gradient, out.P = grad, Pm
    if order >= 2:
        CP = np.einsum("ab,kbc->kac", Cinv, Pm)
        linear = S_sum - E_sum - (g2_sum if reml else 0.0)  # tr(S A_kl) - tr(A_kl E) - tr(C^-1 R_kl)
        H = d2.reshape(K * K, T * T) @ linear.T.reshape(-1)
        H = H.reshape(K, K) + bilinear - 2 * (h @ Cinv @ h.T)
        if reml:
            H -= np.einsum("kab,lba->kl", CP, CP)
        out.hessian = (H + H.T) / 2
        out.d2 = d2
    return out


def _pair_traces(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """tr(A_k B_l) for stacks A (K, t, t) and B (K, t, t), as one matrix product."""
    K = len(A)
    return A.reshape(K, -1) @ np.swapaxes(B, 1, 2).reshape(K, -1).T


def weighted_qr(fit, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sum_kl W_kl Q_kl and sum_kl W_kl R_kl of Kenward-Roger, without forming every Q_kl and R_kl.

    Q_kl = X' Sigma^-1 dSigma_k Sigma^-1 dSigma_l Sigma^-1 X and R_kl = X' Sigma^-1 d2Sigma_kl Sigma^-1 X,
    summed over participants (each on its observed visits).
    """
    d, T = fit.data, fit.data.n_visits
    d1, d2 = covariance_derivatives(fit.theta, fit.structure, T, second=True)
    Sig = covariance(fit.theta, fit.structure, T)
    K = len(fit.theta)
    D2 = (W.reshape(-1) @ d2.reshape(K * K, T * T)).reshape(T, T)
    p = d.p
    WQ, WR = np.zeros((p, p)), np.zeros((p, p))
    for pat in _patterns(d):
        v = pat.visits
        S = np.linalg.inv(Sig[np.ix_(v, v)])
        SX = np.einsum("tu,mua->mta", S, pat.X)
        A = d1[:, v][:, :, v]
        t = len(v)
        SB = S @ (W @ A.reshape(K, -1)).reshape(K, t, t)  # S sum_l W_kl A_l
        M = A.transpose(1, 0, 2).reshape(t, K * t) @ SB.reshape(K * t, t)  # sum_kl W_kl A_k S A_l
        flat = SX.transpose(1, 0, 2).reshape(t, -1)  # (t, m p)
        for target, mid in ((WQ, M), (WR, D2[np.ix_(v, v)])):
            target += np.einsum("mta,mtb->ab", SX, (mid @ flat).reshape(t, -1, p).transpose(1, 0, 2))
    return WQ, WR


@dataclass
class MMRMFit:
    """An MMRM fit: estimates, covariance parameters, their covariance and the optimiser's verdict."""

    data: RepeatedData
    structure: str
    reml: bool
    theta: np.ndarray
    beta: np.ndarray
    vcov: np.ndarray  # model-based Var(beta-hat) = (X' Sigma^-1 X)^-1
    sigma: np.ndarray  # (T, T) estimated covariance over visits
    theta_vcov: np.ndarray  # inverse Hessian of -log L in theta (mmrm's theta_vcov)
    criterion: float  # -2 log L (REML or ML)
    converged: bool
    positive_definite: bool
    gradient_max: float
    pieces: _Pieces
    warnings: list[str] = field(default_factory=list)

    @property
    def loglik(self) -> float:
        return -self.criterion / 2

    @property
    def aic(self) -> float:
        """mmrm's AIC: -2 log L + 2 n_theta (covariance parameters only, REML or ML)."""
        return self.criterion + 2 * len(self.theta)

    @property
    def bic(self) -> float:
        """mmrm's BIC: -2 log L + log(participants) n_theta."""
        return self.criterion + np.log(self.data.m) * len(self.theta)


def fit_mmrm(data: RepeatedData, structure: str = "us", reml: bool = True) -> MMRMFit:
    """Fit an MMRM by Newton's method on the profiled (RE)ML criterion, as mmrm defines it.

    Parameters
    ----------
    data : RepeatedData
        Design, response, participants and visit indices, rows sorted by participant.
    structure : str
        Covariance structure over visits (models.covariance.STRUCTURES).
    reml : bool
        REML (default) or maximum likelihood.

    Returns
    -------
    MMRMFit

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(3)
    >>> m, T = 40, 3
    >>> g = np.repeat(np.arange(m), T); v = np.tile(np.arange(T), m); arm = (g % 2).astype(float)
    >>> X = np.column_stack([np.ones(m * T), v == 1, v == 2, arm * (v == 1), arm * (v == 2)]).astype(float)
    >>> y = X @ [1.0, 0.5, 0.8, -0.4, -0.9] + np.repeat(rng.normal(size=m), T) + rng.normal(size=m * T)
    >>> fit = fit_mmrm(RepeatedData(X, y, g, v, T, ("a", "b", "c", "d", "e")), "us")
    >>> fit.converged, fit.positive_definite, len(fit.theta)
    (True, True, 6)
    """
    if data.n <= data.p:
        raise ValueError(f"{data.n} observations cannot estimate {data.p} fixed effects")
    if np.linalg.matrix_rank(data.X) < data.p:
        raise ValueError("fixed-effects design is rank deficient")
    T = data.n_visits
    if T < 2:
        raise ValueError("an MMRM needs at least two visits")
    pats = _patterns(data)
    K = n_theta(structure, T)
    theta = start(structure, T)
    pieces = lambda th, order: mmrm_pieces(th, data, structure, reml, order, pats)  # noqa: E731
    # Newton from mmrm's start; then L-BFGS-B before Newton; then from the residuals' empirical
    # covariance (mmrm's emp_start, for every structure): the first that reaches a minimum wins
    best = None
    for start_theta, quasi in ((theta, False), (theta, True), (None, True)):
        if start_theta is None:
            start_theta = theta_from(_empirical_covariance(data, pats), structure)
        th, c, ok = trust_region_newton(start_theta, pieces, quasi)
        minimum = ok and c.hessian is not None and np.linalg.eigvalsh(c.hessian).min() > 0
        if best is None or best[1].hessian is None or (np.isfinite(c.criterion) and c.criterion < best[1].criterion):
            best = (th, c, ok)
        if minimum:
            best = (th, c, ok)
            break
    theta, cur, converged = best
    if cur.hessian is None:
        raise ValueError(f"the {'REML' if reml else 'ML'} criterion of the {structure} covariance is not finite")
    H = cur.hessian
    vals = np.linalg.eigvalsh(H)
    minimum = bool(vals.min() > 0)
    gmax = float(np.sqrt(abs(cur.gradient @ np.linalg.solve(H, cur.gradient)))) if minimum else np.inf
    converged = bool(minimum and gmax < GRADIENT_TOL and (converged or gmax < 1e-6))
    Sig = covariance(theta, structure, T)
    pd_ok = bool(np.linalg.eigvalsh(Sig).min() > 0)
    notes = [] if converged else [f"model failed to converge: scaled gradient {gmax:.2g}"]
    if not pd_ok:
        notes.append("the estimated covariance over visits is not positive definite")
    return MMRMFit(
        data=data,
        structure=structure,
        reml=reml,
        theta=theta,
        beta=cur.beta,
        vcov=np.linalg.inv(cur.C),
        sigma=Sig,
        theta_vcov=2 * np.linalg.inv(H) if minimum else np.full((K, K), np.nan),
        criterion=cur.criterion,
        converged=converged,
        positive_definite=pd_ok,
        gradient_max=gmax,
        pieces=cur,
        warnings=notes,
    )


def _empirical_covariance(data: RepeatedData, pats: list[_Pattern]) -> np.ndarray:
    """Covariance over visits of the least-squares residuals, each pair from the participants seen at both."""
    beta, *_ = np.linalg.lstsq(data.X, data.y, rcond=None)
    T = data.n_visits
    sums, counts = np.zeros((T, T)), np.zeros((T, T))
    for pat in pats:
        r = pat.y - pat.X @ beta
        ix = np.ix_(pat.visits, pat.visits)
        sums[ix] += r.T @ r
        counts[ix] += len(r)
    S = sums / np.maximum(counts, 1)
    vals, vecs = np.linalg.eigh((S + S.T) / 2)  # pairwise estimates need not be positive definite
    return (vecs * np.maximum(vals, 1e-6 * max(vals.max(), 1e-12))) @ vecs.T
