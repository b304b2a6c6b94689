"""Missingness patterns: a repeated-measures outcome reduced to the cross-products its MMRM needs.

Participants observed at the same visits share Sigma_i, so the criterion of models.mmrm, its
derivatives and the Kenward-Roger sums are bilinear in each pattern's (X_i, y_i) and need only the
pattern's cross-products (Mallinckrodt et al. 2008, Drug Inf J 42:303). They are stored packed
(the (t, u) and (u, t) blocks enter only as their symmetric sum) and stacked fit by fit (a panel's
analytes), so that every sum over a fit's patterns is one matrix product.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pnitrial.models.mmrm import RepeatedData

__all__ = ["Patterns", "Stack", "empirical_covariances", "pattern_products", "stack_fits"]


@dataclass(frozen=True)
class Patterns:
    """The missingness patterns with t observed visits, each reduced to its cross-products (theta-free)."""

    visits: np.ndarray  # (P, t) observed visit indices of each pattern
    m: np.ndarray  # (P,) participants per pattern
    owner: np.ndarray  # (P,) the fit (analyte of a panel) each pattern belongs to
    XX: np.ndarray  # (P, t(t+1)/2, p(p+1)/2): sum_i X_it X_iu' + X_iu X_it' (t < u), X_it X_it', packed
    XY: np.ndarray  # (P, t*t, p): [(t, u), a] = sum_i X_ita y0_iu
    YY: np.ndarray  # (P, t, t): sum_i y0_it y0_iu


def pattern_products(d: RepeatedData) -> tuple[np.ndarray, list[Patterns], Stack]:
    """Least-squares coefficients and the participants grouped by the visits at which they were observed.

    Every term of the criterion and its derivatives is a bilinear form in a participant's (X_i, y_i),
    so a pattern enters only through its cross-products and a fit costs the same for 50 or 50,000
    participants; patterns with equally many visits are stacked so that each step is one array
    operation. The response is centred on its least-squares fit first (y0 = y - X b_ols, beta =
    b_ols + the GLS coefficients of y0), which keeps the residual cross-products free of cancellation.

    Examples
    --------
    >>> from pnitrial.models.mmrm import RepeatedData
    >>> g = np.array([0, 0, 0, 1, 1, 2, 2, 2]); v = np.array([0, 1, 2, 0, 2, 0, 1, 2])
    >>> d = RepeatedData(np.ones((8, 1)), np.arange(8.0), g, v, 3, ("(Intercept)",))
    >>> b_ols, groups, stack = pattern_products(d)
    >>> [(grp.visits.tolist(), grp.m.tolist()) for grp in groups]
    [([[0, 2]], [1]), ([[0, 1, 2]], [2])]
    >>> stack.XX.shape  # one fit: 3 + 6 packed visit pairs, 1 packed column pair
    (1, 9, 1)
    """
    if np.any(np.diff(d.group) < 0):
        raise ValueError("rows must be sorted by participant")
    T, p = d.n_visits, d.p
    seen = np.bincount(d.group * T + d.visit, minlength=d.m * T).reshape(d.m, T)
    if seen.max(initial=0) > 1:
        raise ValueError("a participant has two rows at one visit")
    b_ols, *_ = np.linalg.lstsq(d.X, d.y, rcond=None)
    y0 = d.y - d.X @ b_ols
    codes, which = np.unique((seen > 0) @ (1 << np.arange(T)), return_inverse=True)
    keys = ((codes[:, None] >> np.arange(T)) & 1).astype(bool)
    count = keys.sum(axis=1)
    order = np.lexsort(tuple(~keys.T[::-1]) + (count,))  # by size, then as the visit tuples sort
    start = np.r_[0, np.cumsum(seen.sum(axis=1))]
    by_pattern = np.argsort(which, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(which, minlength=len(codes)))]
    groups = []
    for t in np.unique(count[count > 0]):
        stats = []
        for k in order[count[order] == t]:
            members = by_pattern[bounds[k] : bounds[k + 1]]
            rows = (start[members][:, None] + np.arange(t)).reshape(-1)
            flat = d.X[rows].reshape(-1, t * p)
            y = y0[rows].reshape(-1, t)
            XX = pack_cross((flat.T @ flat).reshape(t, p, t, p), t, p)
            XY = (flat.T @ y).reshape(t, p, t).transpose(0, 2, 1).reshape(t * t, p)
            stats.append((np.flatnonzero(keys[k]), len(flat), 0, XX, XY, y.T @ y))
        groups.append(Patterns(*(np.array(x) for x in zip(*stats, strict=True))))
    return b_ols, groups, stack_fits(groups, 1)


def pack_cross(XX: np.ndarray, t: int, p: int) -> np.ndarray:
    """(t(t+1)/2, p(p+1)/2) packed cross-products from XX[t, a, u, b] = sum_i X_ita X_iub.

    Every matrix the criterion contracts them with over visits is symmetric (S, S dSigma S, ...),
    so the (t, u) and (u, t) blocks enter only as their sum, which is symmetric in (a, b): both
    halves are redundant, and dropping them makes the products three times smaller.
    """
    iu, ju = triu(t)[:2]
    blocks = XX.transpose(0, 2, 1, 3)[iu, ju]  # (tt, p, p): X_t' X_u
    blocks = np.where((iu != ju)[:, None, None], blocks + blocks.swapaxes(1, 2), blocks)
    return upper(blocks)


@functools.lru_cache(maxsize=64)
def triu(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row and column indices of the upper triangle of n x n, and the off-diagonal weights 1 or 2."""
    iu, ju = np.triu_indices(n)
    return iu, ju, np.where(iu == ju, 1.0, 2.0)


def upper(M: np.ndarray) -> np.ndarray:
    """The upper triangle (row by row) of symmetric matrices (..., n, n): (..., n(n+1)/2)."""
    iu, ju = triu(M.shape[-1])[:2]
    return M[..., iu, ju]


def upper_weighted(M: np.ndarray) -> np.ndarray:
    """w * upper triangle, w = 1 on the diagonal and 2 off it: M_packed . upper_weighted(N) = tr(M N)."""
    iu, ju, w = triu(M.shape[-1])
    return M[..., iu, ju] * w


def unpack(packed: np.ndarray, n: int) -> np.ndarray:
    """Symmetric (..., n, n) matrices from their upper triangles (..., n(n+1)/2)."""
    iu, ju = triu(n)[:2]
    out = np.empty(packed.shape[:-1] + (n, n))
    out[..., iu, ju] = packed
    out[..., ju, iu] = packed
    return out


def symmetric_from_packed(values: np.ndarray, t: int) -> np.ndarray:
    """(Q, t, t) symmetric matrices whose (t, u) entry is a packed cross-product's contraction.

    A packed (t, u) entry with t < u holds the sum of the (t, u) and (u, t) blocks, so each of the
    two entries it fills is half of it.
    """
    return unpack(values / triu(t)[2], t)


@dataclass(frozen=True)
class Stack:
    """Each fit's patterns' cross-products one after another along one axis (zero-padded to the longest).

    Sums over a fit's patterns of U_q M_q (X' Sigma^-1 X, X' S dSigma S X, ...) are then one matrix
    product per fit, [U_q1 .. U_qc] [M_q1; ..; M_qc], with no per-pattern products to add up.
    """

    XX: np.ndarray  # (A, R, p(p+1)/2) the packed cross-products (R: a fit's rows, t(t+1)/2 a pattern)
    XY: np.ndarray  # (A, R2, p) the design-response products (t*t rows a pattern)
    at: list  # per group of patterns: (rows (Q, t(t+1)/2), rows2 (Q, t*t)) of each pattern in its fit's stack

    def empty(self, A: int, K: int) -> tuple[np.ndarray, np.ndarray]:
        """Zeroed left factors (A, K, R) and (A, K, R2) to fill pattern by pattern."""
        return np.zeros((A, K, self.XX.shape[1])), np.zeros((A, K, self.XY.shape[1]))

    def take(self, index: np.ndarray) -> Stack:
        """The stacks of fits `index` (owners renumbered as `index` orders them)."""
        return Stack(self.XX[index], self.XY[index], self.at)


def place(target: np.ndarray, owner: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
    """target[owner_q, :, rows_q] = values_q for a group's patterns (values (Q, K, r)); one slice for one fit."""
    Q, K, r = values.shape
    if target.shape[0] == 1:  # one fit: its patterns' rows are consecutive
        target[0, :, rows[0, 0] : rows[0, 0] + Q * r] = values.transpose(1, 0, 2).reshape(K, Q * r)
    else:
        target[owner[:, None], :, rows] = values.swapaxes(1, 2)


def stack_fits(groups: list[Patterns], A: int) -> Stack:
    """The fits' patterns stacked fit by fit (owners non-decreasing within each group)."""
    fill, fill2 = np.zeros(A, dtype=int), np.zeros(A, dtype=int)
    at = []
    for g in groups:
        Q, t = g.visits.shape
        tt = t * (t + 1) // 2
        first = np.searchsorted(g.owner, g.owner)  # each pattern's rank among its fit's patterns here
        rank = np.arange(Q) - first
        rows = (fill[g.owner] + rank * tt)[:, None] + np.arange(tt)
        rows2 = (fill2[g.owner] + rank * t * t)[:, None] + np.arange(t * t)
        counts = np.bincount(g.owner, minlength=A)
        fill += counts * tt
        fill2 += counts * t * t
        at.append((rows, rows2))
    p2 = groups[0].XX.shape[-1] if groups else 0
    p = groups[0].XY.shape[-1] if groups else 0
    XX, XY = np.zeros((A, fill.max(initial=0), p2)), np.zeros((A, fill2.max(initial=0), p))
    for g, (rows, rows2) in zip(groups, at, strict=True):
        XX[g.owner[:, None], rows] = g.XX
        XY[g.owner[:, None], rows2] = g.XY
    return Stack(XX, XY, at)


def by_owner(values: np.ndarray, owner: np.ndarray, A: int) -> np.ndarray:
    """Sums of the patterns' values per fit: (A, ...) from (Q, ...), owners non-decreasing."""
    if A == 1:
        return values.sum(axis=0, keepdims=True)
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    out = np.zeros((A,) + values.shape[1:])
    out[owner[starts]] = values if len(starts) == len(owner) else np.add.reduceat(values, starts, axis=0)
    return out


def scatter_add(out: np.ndarray, ix: tuple, values: np.ndarray) -> None:
    """out[ix] += values for a pattern stack's (fit, visit, visit) indices, repeated indices summed."""
    A, T, _ = out.shape
    flat = (ix[0] * T + ix[1]) * T + ix[2]
    out += np.bincount(flat.reshape(-1), weights=values.reshape(-1), minlength=A * T * T).reshape(A, T, T)


def empirical_covariance(data: RepeatedData, pats: list[Patterns]) -> np.ndarray:
    """Covariance over visits of the least-squares residuals, each pair from the participants seen at both."""
    return empirical_covariances(pats, 1, data.n_visits)[0]


def empirical_covariances(groups: list[Patterns], A: int, T: int) -> np.ndarray:
    """`empirical_covariance` of each of A fits at once (patterns owned as in batch_pieces): (A, T, T)."""
    sums, counts = np.zeros((A, T, T)), np.zeros((A, T, T))
    for g in groups:  # YY holds the least-squares residuals' cross-products
        ix = (g.owner[:, None, None], g.visits[:, :, None], g.visits[:, None, :])
        scatter_add(sums, ix, g.YY)
        scatter_add(counts, ix, np.broadcast_to(g.m[:, None, None], g.YY.shape).astype(float))
    S = sums / np.maximum(counts, 1)
    vals, vecs = np.linalg.eigh((S + S.swapaxes(1, 2)) / 2)  # pairwise estimates need not be positive definite
    floor = 1e-6 * np.maximum(vals.max(axis=1), 1e-12)
    return (vecs * np.maximum(vals, floor[:, None])[:, None, :]) @ vecs.swapaxes(1, 2)
