"""Mixed models for repeated measures: y_i ~ N(X_i beta, Sigma_i), Sigma_i the visits-observed block of Sigma(theta).

The residual covariance over visits follows one of models.covariance's structures, parameterised as
R's mmrm parameterises it, and a participant with missing visits contributes the submatrix of its
observed visits (Mallinckrodt et al. 2008, Drug Inf J 42:303). beta is profiled out by generalised
least squares, so the (RE)ML criterion is a function of theta alone, and it is a sum over
missingness patterns: participants observed at the same visits share Sigma_i, and their data
reduce to cross-products. The criterion's gradient and Hessian are closed form given dSigma and
d2Sigma (Harville 1977, JASA 72:320); Newton's method minimises it. The same pieces (P, Q, R)
serve Kenward-Roger and Satterthwaite inference (inference.kenward_roger, inference.satterthwaite).
The pieces are computed for a batch of fits that share a design (batch_pieces: a panel's analytes,
models.mmrm_batch); one fit is a batch of one. The patterns' cross-products are models.patterns'.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pnitrial.models.covariance import covariance, covariance_derivatives, start, theta_from
from pnitrial.models.linalg import chol_solve
from pnitrial.models.optimise import GRADIENT_TOL, newton, trust_region_newton
from pnitrial.models.patterns import (
    Patterns,
    Stack,
    by_owner,
    empirical_covariance,
    pattern_products,
    place,
    scatter_add,
    stack_fits,
    symmetric_from_packed,
    unpack,
    upper,
    upper_weighted,
)

__all__ = ["MMRMFit", "RepeatedData", "batch_pieces", "finish", "fit_mmrm", "mmrm_pieces", "prepare", "weighted_qr"]


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


@dataclass
class _Pieces:
    """The criterion at theta and, when asked, its derivatives and the P, Q, R of Kenward-Roger.

    One fit's values, or a batch's with a leading axis (one fit per analyte of a panel).
    """

    criterion: float | np.ndarray
    beta: np.ndarray
    C: np.ndarray  # X' Sigma^-1 X
    gradient: np.ndarray | None = None
    hessian: np.ndarray | None = None
    P: np.ndarray | None = None  # (K, p, p) X' dSigma^-1/dtheta_k X

    def item(self, a: int) -> _Pieces:
        """Fit a of a batch."""
        pick = lambda x: None if x is None else x[a]  # noqa: E731
        return _Pieces(
            float(self.criterion[a]), self.beta[a], self.C[a], *map(pick, (self.gradient, self.hessian, self.P))
        )


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
    b_ols, groups, *stack = patterns if patterns is not None else pattern_products(data)
    theta = np.asarray(theta, dtype=float)[None]
    n = np.array([data.n])
    out = batch_pieces(theta, b_ols[None], groups, n, data.n_visits, structure, reml, order, *stack[:1]).item(0)
    if not np.isfinite(out.criterion):  # one fit reports an infeasible theta without derivatives
        out.gradient = out.hessian = out.P = None
    return out


def batch_pieces(
    theta: np.ndarray,
    b_ols: np.ndarray,
    groups: list[Patterns],
    n: np.ndarray,
    T: int,
    structure: str,
    reml: bool = True,
    order: int = 0,
    stack: Stack | None = None,
) -> _Pieces:
    """`mmrm_pieces` of A fits at once: theta (A, K), each pattern owned by one fit (`Patterns.owner`).

    The fits share the design's columns and visits (a panel's analytes, each with its own missing
    values and response); every array gains a leading axis of length A. A fit whose covariance or
    X' Sigma^-1 X is not positive definite at its theta gets an infinite criterion and NaN elsewhere.
    """
    A, K = theta.shape
    p = b_ols.shape[1]
    stack = stack if stack is not None else stack_fits(groups, A)
    with np.errstate(over="ignore", invalid="ignore"):
        Sig = covariance(theta, structure, T)
    bad = ~np.all(np.isfinite(Sig), axis=(1, 2))
    if bad.any():
        Sig[bad] = np.eye(T)
    inverses = []
    logdet = np.zeros(A)
    S_packed, S_flat = stack.empty(A, 1)
    for g, (rows, rows2) in zip(groups, stack.at, strict=True):
        Q, t = g.visits.shape
        S_full = Sig[g.owner[:, None, None], g.visits[:, :, None], g.visits[:, None, :]]  # (Q, t, t)
        L, S, failed = _cholesky_inverse(S_full)
        if failed.any():
            bad[g.owner[failed]] = True
        logdet += by_owner(2.0 * g.m * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1), g.owner, A)
        place(S_packed, g.owner, rows, upper(S)[:, None])
        place(S_flat, g.owner, rows2, S.reshape(Q, 1, -1))
        inverses.append(S)
    C = unpack((S_packed @ stack.XX)[:, 0], p)  # X' Sigma^-1 X: every pattern's products in one product
    Xy = (S_flat @ stack.XY)[:, 0]
    bad |= ~np.all(np.isfinite(C), axis=(1, 2)) | ~np.all(np.isfinite(Xy), axis=1)
    if bad.any():
        C[bad], Xy[bad] = np.eye(p), 0.0
    Lc, failed = _cholesky(C)
    if failed.any():
        bad |= failed
        C[failed] = np.eye(p)
    beta0 = chol_solve(Lc, Xy)
    quad = np.zeros(A)
    resid = []  # per pattern sum_i r_i r_i', r_i = y0_i - X_i beta0
    bb = upper_weighted(beta0[:, :, None] * beta0[:, None, :])  # beta0' M beta0 = M_packed . bb
    for g, S in zip(groups, inverses, strict=True):
        Q, t = g.visits.shape
        B = (g.XY @ beta0[g.owner][:, :, None]).reshape(Q, t, t)
        RR = g.YY - B - B.swapaxes(1, 2) + symmetric_from_packed((g.XX @ bb[g.owner][:, :, None])[:, :, 0], t)
        quad += by_owner(np.sum(S * RR, axis=(1, 2)), g.owner, A)
        resid.append(RR)
    dof = n - p if reml else n
    crit = logdet + quad + dof * np.log(2 * np.pi)
    if reml:
        crit += 2.0 * np.log(np.diagonal(Lc, axis1=1, axis2=2)).sum(axis=1)
    bad |= ~np.isfinite(crit)
    crit[bad] = np.inf
    out = _Pieces(crit, b_ols + beta0, C)
    if order == 0:
        return _mark_failed(out, bad)
    d1, d2 = covariance_derivatives(theta, structure, T, second=order >= 2)
    Cinv = np.linalg.inv(C)
    grad = np.zeros((A, K))
    SAS_packed, SAS_flat = stack.empty(A, K)
    # terms linear in a pattern's T x T matrices are summed over patterns first, then contracted once
    S_sum, E_sum, g2_sum = (np.zeros((A, T, T)) for _ in range(3))
    bilinear = np.zeros((A, K, K))  # -tr(S A_k S A_l) + 2 tr(A_k S A_l E) + 2 tr(A_k S A_l g2) [REML]
    for g, S, RR, (rows, rows2) in zip(groups, inverses, resid, stack.at, strict=True):
        Q, t = g.visits.shape
        o = g.owner
        ix = (o[:, None, None], g.visits[:, :, None], g.visits[:, None, :])
        A_ = d1.transpose(0, 2, 3, 1)[ix].transpose(0, 3, 1, 2)  # (Q, K, t, t)
        E = S @ RR @ S  # sum_i e_i e_i', e_i = S r_i
        SA = S[:, None] @ A_
        SAS = (SA @ S[:, None]).reshape(Q, K, t * t)
        A_flat = A_.reshape(Q, K, t * t)
        grad += by_owner(np.einsum("qkx,qx->qk", A_flat, g.m[:, None] * S.reshape(Q, -1) - E.reshape(Q, -1)), o, A)
        place(SAS_packed, o, rows, upper(SAS.reshape(Q, K, t, t)))
        place(SAS_flat, o, rows2, SAS)
        if order >= 2:
            XCX = symmetric_from_packed((g.XX @ upper_weighted(Cinv)[o][:, :, None])[:, :, 0], t)
            g2 = S @ XCX @ S  # sum_i S X_i C^-1 X_i' S
            scatter_add(S_sum, ix, g.m[:, None, None] * S)
            scatter_add(E_sum, ix, E)
            if reml:
                scatter_add(g2_sum, ix, g2)
            # -m tr(S A_k S A_l) + 2 tr(A_k S A_l M) = tr(A_k S A_l (2 M - m S)), M = E (+ g2)
            N = 2 * (E + g2 if reml else E) - g.m[:, None, None] * S
            bilinear += by_owner(_pair_traces(A_, SA @ N[:, None]), o, A)
    Pm = -unpack(SAS_packed @ stack.XX, p)  # X_i' S A_k S X_i summed over participants
    h = SAS_flat @ stack.XY + (Pm @ beta0[:, None, :, None])[..., 0]  # sum_i X_i' S A_k S r_i, r_i = y0_i - X_i beta0
    if reml:
        grad += np.einsum("akx,ax->ak", Pm.reshape(A, K, -1), Cinv.reshape(A, -1))  # tr(C^-1 P_k), both symmetric
    out.gradient, out.P = grad, Pm
    if order >= 2:
        CP = Cinv[:, None] @ Pm
        linear = S_sum - E_sum - (g2_sum if reml else 0.0)  # tr(S A_kl) - tr(A_kl E) - tr(C^-1 R_kl)
        H = d2.traces(linear) + bilinear - 2 * (h @ Cinv @ h.swapaxes(1, 2))
        if reml:
            H -= CP.reshape(A, K, -1) @ CP.swapaxes(2, 3).reshape(A, K, -1).swapaxes(1, 2)  # tr(C^-1 P_k C^-1 P_l)
        out.hessian = (H + H.swapaxes(1, 2)) / 2
    return _mark_failed(out, bad)


def _mark_failed(out: _Pieces, bad: np.ndarray) -> _Pieces:
    """A failed fit's pieces: infinite criterion, NaN elsewhere (as one fit reports an infeasible theta)."""
    if bad.any():
        out.criterion[bad] = np.inf
        for x in (out.beta, out.C, out.gradient, out.hessian, out.P):
            if x is not None:
                x[bad] = np.nan
    return out


def _cholesky(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cholesky factors of a stack of matrices, and which are not positive definite (factor: identity)."""
    failed = np.zeros(len(S), dtype=bool)
    try:
        return np.linalg.cholesky(S), failed
    except np.linalg.LinAlgError:
        L = np.empty_like(S)
        for q in range(len(S)):  # rare (a trial step): find the failing ones, carry on with the others
            try:
                L[q] = np.linalg.cholesky(S[q])
            except np.linalg.LinAlgError:
                failed[q] = True
                L[q] = np.eye(S.shape[-1])
        return L, failed


def _cholesky_inverse(S: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cholesky factors and symmetrised inverses of a stack of matrices, and which are not positive definite."""
    L, failed = _cholesky(S)
    if failed.any():
        S = np.where(failed[:, None, None], np.eye(S.shape[-1]), S)
    Sinv = np.linalg.inv(S)
    return L, (Sinv + Sinv.swapaxes(1, 2)) / 2, failed


def _pair_traces(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """tr(A_pk B_pl) for stacks A and B (P, K, t, t): (P, K, K), one matrix product per pattern."""
    P, K = A.shape[:2]
    return A.reshape(P, K, -1) @ np.swapaxes(B, 2, 3).reshape(P, K, -1).swapaxes(1, 2)


def weighted_qr(fit, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sum_kl W_kl Q_kl and sum_kl W_kl R_kl of Kenward-Roger, without forming every Q_kl and R_kl.

    Q_kl = X' Sigma^-1 dSigma_k Sigma^-1 dSigma_l Sigma^-1 X and R_kl = X' Sigma^-1 d2Sigma_kl Sigma^-1 X,
    summed over participants (each on its observed visits).
    """
    d, T = fit.data, fit.data.n_visits
    d1, d2 = covariance_derivatives(fit.theta, fit.structure, T, second=True)
    Sig = covariance(fit.theta, fit.structure, T)
    K = len(fit.theta)
    D2 = d2.weighted(W)
    p = d.p
    WQ, WR = np.zeros(p * p), np.zeros(p * p)
    for g in (fit.patterns or pattern_products(d))[1]:
        P, t = g.visits.shape
        ix = (g.visits[:, :, None], g.visits[:, None, :])
        S = np.linalg.inv(Sig[ix])
        A = d1[:, ix[0], ix[1]].transpose(1, 0, 2, 3)  # (P, K, t, t)
        SB = S[:, None] @ (W @ A.reshape(P, K, -1)).reshape(P, K, t, t)  # S sum_l W_kl A_l
        M = A.transpose(0, 2, 1, 3).reshape(P, t, K * t) @ SB.reshape(P, K * t, t)  # sum_kl W_kl A_k S A_l
        WQ += unpack(upper(S @ M @ S).reshape(-1) @ g.XX.reshape(-1, g.XX.shape[-1]), p).reshape(-1)
        WR += unpack(upper(S @ D2[ix] @ S).reshape(-1) @ g.XX.reshape(-1, g.XX.shape[-1]), p).reshape(-1)
    return WQ.reshape(p, p), WR.reshape(p, p)


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
    patterns: tuple | None = field(default=None, repr=False)  # the data's patterns (models.mmrm._patterns)

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


def fit_mmrm(
    data: RepeatedData, structure: str = "us", reml: bool = True, start_theta: np.ndarray | None = None
) -> MMRMFit:
    """Fit an MMRM by Newton's method on the profiled (RE)ML criterion, as mmrm defines it.

    Parameters
    ----------
    data : RepeatedData
        Design, response, participants and visit indices, rows sorted by participant.
    structure : str
        Covariance structure over visits (models.covariance.STRUCTURES).
    reml : bool
        REML (default) or maximum likelihood.
    start_theta : ndarray, optional
        Covariance parameters to start from (a fit to nearly the same data: jackknife replicates);
        mmrm's own starts follow when it does not reach a minimum.

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
    pats = prepare(data, structure)
    T = data.n_visits
    theta = start(structure, T)
    pieces = lambda th, order: mmrm_pieces(th, data, structure, reml, order, pats)  # noqa: E731
    # Newton from mmrm's start; then L-BFGS-B before Newton; then from the residuals' empirical
    # covariance (mmrm's emp_start, for every structure): the first that reaches a minimum wins
    best = None
    attempts = ((theta, False), (theta, True), (None, True))
    if start_theta is not None:
        # a start near the optimum (a jackknife replicate): Newton steps first, the full optimiser if they fail
        th, c, ok = newton(np.asarray(start_theta, dtype=float), pieces)
        if ok:
            best, attempts = (th, c, ok), ()
        else:
            attempts = ((np.asarray(start_theta, dtype=float), False), *attempts)
    for first, quasi in attempts:
        if first is None:
            first = theta_from(empirical_covariance(data, pats[1]), structure)
        th, c, ok = trust_region_newton(first, pieces, quasi)
        minimum = ok and c.hessian is not None and np.linalg.eigvalsh(c.hessian).min() > 0
        if best is None or best[1].hessian is None or (np.isfinite(c.criterion) and c.criterion < best[1].criterion):
            best = (th, c, ok)
        if minimum:
            best = (th, c, ok)
            break
    theta, cur, converged = best
    return finish(data, structure, reml, theta, cur, converged, pats)


def prepare(data: RepeatedData, structure: str):
    """The checks that refuse a model no optimiser can fit, then the data's missingness patterns.

    Raises ValueError with the reason (too few observations, a rank-deficient design, one visit,
    an unstructured covariance the participants cannot support, a response fitted exactly).
    """
    if data.n <= data.p:
        raise ValueError(f"{data.n} observations cannot estimate {data.p} fixed effects")
    if np.linalg.matrix_rank(data.X) < data.p:
        raise ValueError("fixed-effects design is rank deficient")
    if data.n_visits < 2:
        raise ValueError("an MMRM needs at least two visits")
    if structure == "us":
        _check_unstructured(data)
    pats = pattern_products(data)
    rss = sum(float(np.trace(g.YY, axis1=1, axis2=2).sum()) for g in pats[1])
    if rss <= 1e-20 * max(float(data.y @ data.y), 1e-300):
        raise ValueError("degenerate: the fixed effects fit the response exactly (no residual variation)")
    return pats


def finish(
    data: RepeatedData, structure: str, reml: bool, theta: np.ndarray, cur: _Pieces, converged: bool, pats
) -> MMRMFit:
    """The fit at the optimiser's last point: lme4's convergence verdict, Var(beta-hat), Cov(theta-hat)."""
    T, K = data.n_visits, len(theta)
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
        patterns=pats,
    )


def _check_unstructured(data: RepeatedData) -> None:
    """Refuse an unstructured covariance that the participants cannot make positive definite.

    The residuals of m participants about a design with r participant-level columns (intercept, arm,
    baseline covariates) span at most m - r dimensions, so an unstructured T x T covariance needs
    m - r >= T; with fewer, no optimiser can converge and saying so at once saves the attempts.
    """
    starts = np.flatnonzero(np.r_[True, np.diff(data.group) != 0])
    first = data.X[starts][np.searchsorted(starts, np.arange(data.n), side="right") - 1]
    between = np.all(data.X == first, axis=0)
    r = int(np.linalg.matrix_rank(data.X[starts][:, between])) if between.any() else 0
    m, T = len(starts), data.n_visits
    if m - r < T:
        raise ValueError(
            f"an unstructured covariance over {T} visits needs {T + r} participants or more "
            f"({m} here, {r} participant-level fixed effects)"
        )
