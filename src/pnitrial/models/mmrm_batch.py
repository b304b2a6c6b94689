"""MMRMs of many outcomes that share a design (a panel's analytes), fitted together.

Each analyte keeps its own missing values, response, covariance parameters and optimiser verdict;
what the batch shares is the work. The missingness patterns of all analytes are reduced to their
cross-products at once, from each participant's products over all visits (sparse sums, no loop over
analytes or patterns); the criterion, its gradient and Hessian are evaluated for every analyte in
one pass of array operations (models.mmrm.batch_pieces, the single fit's own formulas with a
leading analyte axis); and a damped Newton iteration (models.optimise.newton_batch) moves all
analytes at once from the empirical-covariance start mmrm uses as its fallback. An analyte the
batch refuses or cannot bring to a minimum is returned as None, for the single fit's full optimiser,
checks and fallback chain (models.mmrm.fit_mmrm) to take over.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from pnitrial.models.covariance import theta_from
from pnitrial.models.mmrm import MMRMFit, RepeatedData, batch_pieces, finish
from pnitrial.models.optimise import newton_batch
from pnitrial.models.patterns import Patterns, Stack, empirical_covariances, stack_fits, triu, unpack

__all__ = ["Panel", "fit_mmrm_batch"]

BLOCK_FLOATS = 8_000_000  # per-participant response products per block of analytes (about 64 MB)


@dataclass(frozen=True)
class Panel:
    """Outcomes sharing one design: a row per participant and visit, a response column per outcome.

    Rows sorted by participant (codes 0 .. m-1) and, within a participant, by visit (0 .. T-1);
    Y holds NaN where an outcome is missing.
    """

    X: np.ndarray  # (n, p)
    group: np.ndarray  # (n,)
    visit: np.ndarray  # (n,)
    n_visits: int
    fixed_names: tuple[str, ...]
    Y: np.ndarray  # (n, A)

    def data(self, a: int) -> RepeatedData:
        """Outcome a's own rows, as one fit takes them."""
        obs = np.isfinite(self.Y[:, a])
        g = self.group[obs]
        group = np.r_[0, np.cumsum(g[1:] != g[:-1])] if len(g) else g
        return RepeatedData(self.X[obs], self.Y[obs, a], group, self.visit[obs], self.n_visits, self.fixed_names)


def fit_mmrm_batch(panel: Panel, structure: str = "us", reml: bool = True) -> list[MMRMFit | None]:
    """Fit one MMRM per outcome of a panel (the same design columns, visits and covariance structure).

    Parameters
    ----------
    panel : Panel
        The shared design and one response column per outcome.
    structure : str
        Covariance structure over visits (models.covariance.STRUCTURES).
    reml : bool
        REML (default) or maximum likelihood.

    Returns
    -------
    list of MMRMFit or None
        Each outcome's fit, `fit_mmrm`'s on that outcome's rows to the optimiser's precision; None
        where the batch refuses the model (too few observations or participants, a rank-deficient
        design, a response fitted exactly: `fit_mmrm` raises the reason) or does not reach a
        minimum with the convergence `fit_mmrm` requires.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> m, T = 40, 3
    >>> g = np.repeat(np.arange(m), T); v = np.tile(np.arange(T), m); arm = (g % 2).astype(float)
    >>> X = np.column_stack([np.ones(m * T), v == 1, v == 2, arm * (v == 1), arm * (v == 2)]).astype(float)
    >>> Y = X @ [[1, 1, 1], [0.5, 0.5, 0.5], [0.8, 0.8, 0.8], [-0.4, 0, 0.4], [-0.9, 0, 0.9]]
    >>> Y = Y + rng.normal(size=Y.shape)
    >>> Y[rng.random(Y.shape) < 0.1] = np.nan
    >>> panel = Panel(X, g, v, T, ("a", "b", "c", "d", "e"), Y)
    >>> fits = fit_mmrm_batch(panel, "us")
    >>> [f.converged for f in fits], [round(float(f.beta[4]), 4) for f in fits]
    ([True, True, True], [-0.8337, 0.5734, 0.7486])
    >>> from pnitrial.models.mmrm import fit_mmrm
    >>> max(abs(f.criterion - fit_mmrm(panel.data(a), "us").criterion) for a, f in enumerate(fits)) < 1e-9
    True
    """
    n, A = panel.Y.shape
    T = panel.n_visits
    out: list[MMRMFit | None] = [None] * A
    if T < 2 or A == 0:
        return out
    m = int(panel.group[-1]) + 1 if n else 0
    if np.any(np.diff(panel.group) < 0) or np.any(np.bincount(panel.group * T + panel.visit, minlength=m * T) > 1):
        raise ValueError("rows must be sorted by participant, with one row per participant and visit")
    shared = _Shared.of(panel, m)
    per_block = max(1, BLOCK_FLOATS // max(m * T * T, 1))
    for first in range(0, A, per_block):
        _fit_block(panel, shared, np.arange(first, min(A, first + per_block)), structure, reml, out)
    return out


@dataclass(frozen=True)
class _Shared:
    """What every analyte's patterns are built from: each participant's design over all visits."""

    slot: np.ndarray  # (n,) row -> participant * T + visit
    Xf: np.ndarray  # (m, T, p), zero where the design has no row
    Kf: np.ndarray  # (m, T(T+1)/2 * p(p+1)/2) packed products X_t X_u' + X_u X_t' (models.mmrm._pack_cross)
    Kr: np.ndarray  # (n, p(p+1)/2) upper triangle of x_r x_r' of each row

    @classmethod
    def of(cls, panel: Panel, m: int) -> _Shared:
        T, p = panel.n_visits, panel.X.shape[1]
        slot = panel.group * T + panel.visit
        Xf = np.zeros((m * T, p))
        Xf[slot] = panel.X
        Xf = Xf.reshape(m, T, p)
        it, jt, _ = triu(T)
        ia, ja, _ = triu(p)
        prod = Xf[:, it][:, :, ia] * Xf[:, jt][:, :, ja]  # X_t,a X_u,b
        swap = Xf[:, jt][:, :, ia] * Xf[:, it][:, :, ja]  # X_u,a X_t,b
        Kf = np.where((it != jt)[None, :, None], prod + swap, prod).reshape(m, -1)
        return cls(slot, Xf, Kf, panel.X[:, ia] * panel.X[:, ja])


def _fit_block(panel: Panel, shared: _Shared, cols: np.ndarray, structure: str, reml: bool, out: list) -> None:
    """The analytes `cols`: their patterns, one batched Newton, each analyte's fit."""
    T = panel.n_visits
    keep, b_ols, groups, n = _block_patterns(panel, shared, cols)
    if not len(keep):
        return
    starts = np.array([theta_from(S, structure) for S in empirical_covariances(groups, len(n), T)])
    stack = stack_fits(groups, len(n))
    subsets: dict[bytes, tuple] = {}

    def pieces(theta, index, order):
        key = index.tobytes()
        if key not in subsets:
            subsets.clear()
            subsets[key] = _subset(groups, stack, index, len(n))
        return batch_pieces(
            theta, b_ols[index], *subsets[key][:1], n[index], T, structure, reml, order, subsets[key][1]
        )

    theta, at, converged = newton_batch(starts, pieces)
    for a, col in enumerate(keep):
        cur, j = at[a]
        if not converged[a] or not np.isfinite(cur.criterion[j]):
            continue
        own = [Patterns(g.visits, g.m, np.zeros_like(g.owner), g.XX, g.XY, g.YY) for g in _owned(groups, a)]
        fit = finish(panel.data(col), structure, reml, theta[a], cur.item(j), True, (b_ols[a], own))
        if fit.converged:
            out[col] = fit


def _block_patterns(panel: Panel, shared: _Shared, cols: np.ndarray):
    """Every analyte's missingness patterns reduced to cross-products, all analytes at once.

    Returns the analytes the batch takes (the others are refused as `fit_mmrm` would refuse them, or
    are left to its checks), their least-squares coefficients, the patterns grouped by number of
    visits (owners non-decreasing, as models.mmrm.batch_pieces sums them) and observation counts.
    """
    X, T = panel.X, panel.n_visits
    n, p = X.shape
    m = shared.Xf.shape[0]
    Y = panel.Y[:, cols]
    obs = np.isfinite(Y)
    Y0 = np.where(obs, Y, 0.0)
    # least squares per analyte (normal equations: the centring need not be exact, only close)
    XtX = unpack(obs.T.astype(float) @ shared.Kr, p)
    vals = np.linalg.eigvalsh(XtX)
    counts = obs.sum(axis=0)
    participants = np.zeros((m, len(cols)), dtype=bool)
    np.logical_or.at(participants, panel.group, obs)
    m_a = participants.sum(axis=0)
    ok = (counts > p) & (vals[:, 0] > 1e-10 * np.maximum(vals[:, -1], 1e-300)) & (m_a - p >= T)
    XtX[~ok] = np.eye(p)
    b = np.linalg.solve(XtX, (Y0.T @ X)[:, :, None])[:, :, 0]
    R = np.where(obs, Y0 - X @ b.T, 0.0)
    rss, yy = (R * R).sum(axis=0), (Y0 * Y0).sum(axis=0)
    ok &= rss > 1e-20 * np.maximum(yy, 1e-300)  # else degenerate: fit_mmrm says so
    keep = np.flatnonzero(ok)
    if not len(keep):
        return np.array([], dtype=int), None, None, None
    obs, R, b = obs[:, keep], R[:, keep], b[keep]
    A = len(keep)
    Of = np.zeros((m * T, A), dtype=bool)
    Of[shared.slot] = obs
    Rf = np.zeros((m * T, A))
    Rf[shared.slot] = R
    Of, Rf = Of.reshape(m, T, A), Rf.reshape(m, T, A)
    code = (Of * (1 << np.arange(T))[None, :, None]).sum(axis=1)  # (m, A) pattern of each participant
    owner_of, who = np.nonzero(code.T > 0)  # (analyte, participant) pairs, by analyte then participant
    key = owner_of * (1 << T) + code.T[owner_of, who]
    cells, cell_of = np.unique(key, return_inverse=True)
    cell_of = cell_of.reshape(-1)
    C = len(cells)
    owner, pattern = cells >> T, cells & ((1 << T) - 1)
    member = sparse.csr_matrix((np.ones(len(who)), (cell_of, who)), shape=(C, m))
    sizes = np.asarray(member.sum(axis=1)).reshape(-1)
    XX = member @ shared.Kf  # (C, TT * pp): each cell's products over all visits
    resid = Rf[who, :, owner_of]  # (pairs, T): each pair's residuals
    XY = np.empty((C, T, T * p))  # [c, u, (t, a)] = sum_i y0_iu X_ita
    for u in range(T):
        XY[:, u] = sparse.csr_matrix((resid[:, u], (cell_of, who)), shape=(C, m)) @ shared.Xf.reshape(m, -1)
    pairs_in = sparse.csr_matrix((np.ones(len(who)), (cell_of, np.arange(len(who)))), shape=(C, len(who)))
    YY = (pairs_in @ (resid[:, :, None] * resid[:, None, :]).reshape(len(who), T * T)).reshape(C, T, T)
    XY = XY.reshape(C, T, T, p)  # [c, u, t, a]
    pp = p * (p + 1) // 2
    XX = XX.reshape(C, -1, pp)
    bits = ((pattern[:, None] >> np.arange(T)) & 1).astype(bool)
    t_of = bits.sum(axis=1)
    full_pair = np.full((T, T), -1)
    it, jt, _ = triu(T)
    full_pair[it, jt] = np.arange(len(it))
    groups = []
    for t in np.unique(t_of):
        q = np.flatnonzero(t_of == t)  # cells sorted by (analyte, pattern): owners non-decreasing
        visits = np.nonzero(bits[q])[1].reshape(len(q), t)
        iu, ju, _ = triu(t)
        pairs = full_pair[visits[:, iu], visits[:, ju]]  # (Q, tt) the cell's pairs among all visits'
        xx = XX[q[:, None], pairs]
        xy = XY[q[:, None, None], visits[:, None, :], visits[:, :, None]]  # [q, t, u, a]
        yy = YY[q[:, None, None], visits[:, :, None], visits[:, None, :]]
        groups.append(Patterns(visits, sizes[q], owner[q], xx, xy.reshape(len(q), t * t, p), yy))
    return cols[keep], b, groups, obs.sum(axis=0)


def _owned(groups: list[Patterns], a: int) -> list[Patterns]:
    """The patterns of analyte a."""
    out = []
    for g in groups:
        lo, hi = np.searchsorted(g.owner, [a, a + 1])
        if hi > lo:
            out.append(Patterns(g.visits[lo:hi], g.m[lo:hi], g.owner[lo:hi], g.XX[lo:hi], g.XY[lo:hi], g.YY[lo:hi]))
    return out


def _subset(groups: list[Patterns], stack: Stack, index: np.ndarray, A: int) -> tuple[list[Patterns], Stack]:
    """The patterns and stacks of the analytes `index` (ascending), owners renumbered 0 .. len(index) - 1."""
    if len(index) == A:
        return groups, stack
    pos = np.full(A, -1)
    pos[index] = np.arange(len(index))
    out, at = [], []
    for g, (rows, rows2) in zip(groups, stack.at, strict=True):
        keep = pos[g.owner] >= 0
        if keep.any():
            out.append(Patterns(g.visits[keep], g.m[keep], pos[g.owner[keep]], g.XX[keep], g.XY[keep], g.YY[keep]))
            at.append((rows[keep], rows2[keep]))
    return out, Stack(stack.XX[index], stack.XY[index], at)
