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

from pnitrial.models.covariance import covariance, covariance_derivatives, n_theta, start
from pnitrial.models.optimise import GRADIENT_TOL

__all__ = ["MMRMFit", "RepeatedData", "fit_mmrm", "mmrm_pieces"]

NEWTON_MAX = 200


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
    Q: np.ndarray | None = None  # (K, K, p, p) X' Sigma^-1 dSigma_k Sigma^-1 dSigma_l Sigma^-1 X
    R: np.ndarray | None = None  # (K, K, p, p) X' Sigma^-1 d2Sigma_kl Sigma^-1 X


def mmrm_pieces(
    theta: np.ndarray, data: RepeatedData, structure: str, reml: bool = True, order: int = 0, patterns=None
) -> _Pieces:
    """-2 log-likelihood (REML or ML) at theta, with its gradient and Hessian (order 1, 2) and P, Q, R.

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
    Sig = covariance(theta, structure, T)
    K = len(theta)
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
    except np.linalg.LinAlgError:
        return _Pieces(np.inf, np.full(p, np.nan), np.full((p, p), np.nan))
    beta = np.linalg.solve(C, Xy)
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
    if order >= 2:
        Q = np.zeros((K, K, p, p))
        R = np.zeros((K, K, p, p))
        trSAkl = np.zeros((K, K))
        trSASA = np.zeros((K, K))
        trME = np.zeros((K, K))
        trAklE = np.zeros((K, K))
    for pat, (v, S, SX), e in zip(pats, per, E_all, strict=True):
        m = len(pat.y)
        A = d1[:, v][:, :, v]  # (K, t, t)
        G = np.einsum("mta,mub->tuab", SX, SX)
        E = e.T @ e  # sum of e_i e_i'
        W = np.einsum("mta,mu->tua", SX, e)
        grad += m * np.einsum("tu,kut->k", S, A) - np.einsum("ktu,ut->k", A, E)
        Pm -= np.einsum("ktu,tuab->kab", A, G)
        h += np.einsum("ktu,tua->ka", A, W)
        if order >= 2:
            A2 = d2[:, :, v][:, :, :, v]
            SA = np.einsum("tu,kuv->ktv", S, A)
            M = np.einsum("ktu,luv->kltv", A, SA)  # A_k S A_l
            Q += np.einsum("kltu,tuab->klab", M, G)
            R += np.einsum("kltu,tuab->klab", A2, G)
            trSAkl += m * np.einsum("tu,klut->kl", S, A2)
            trSASA += m * np.einsum("ktu,lut->kl", SA, SA)
            trME += np.einsum("kltu,ut->kl", M, E)
            trAklE += np.einsum("kltu,ut->kl", A2, E)
    if reml:
        grad += np.einsum("ab,kba->k", Cinv, Pm)
    out.gradient, out.P = grad, Pm
    if order >= 2:
        CP = np.einsum("ab,kbc->kac", Cinv, Pm)
        tr_CPCP = np.einsum("kab,lba->kl", CP, CP)
        hCh = h @ Cinv @ h.T
        H = trSAkl - trSASA + 2 * (trME - hCh) - trAklE
        if reml:
            H += -np.einsum("ab,klba->kl", Cinv, R) + 2 * np.einsum("ab,klba->kl", Cinv, Q) - tr_CPCP
        out.hessian, out.Q, out.R = (H + H.T) / 2, Q, R
    return out


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
    cur = mmrm_pieces(theta, data, structure, reml, 2, pats)
    converged = False
    for _ in range(NEWTON_MAX):
        g, H = cur.gradient, cur.hessian
        step = _newton_step(g, H)
        t = 1.0
        while True:  # backtracking: the criterion must fall
            cand = theta - t * step
            new = mmrm_pieces(cand, data, structure, reml, 0, pats)
            if np.isfinite(new.criterion) and new.criterion <= cur.criterion + 1e-4 * t * float(g @ -step):
                break
            t /= 2
            if t < 1e-10:
                break
        if t < 1e-10:
            break
        theta = cand
        cur = mmrm_pieces(theta, data, structure, reml, 2, pats)
        if np.max(np.abs(t * step)) < 1e-10 * max(1.0, np.max(np.abs(theta))):
            converged = True
            break
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


def _newton_step(g: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Newton's step, with the Hessian shifted to positive definite where it is not (Levenberg)."""
    vals = np.linalg.eigvalsh(H)
    shift = 0.0 if vals.min() > 1e-8 * max(1.0, vals.max()) else -vals.min() + 1e-3 * max(1.0, abs(vals).max())
    return np.linalg.solve(H + shift * np.eye(len(g)), g)
