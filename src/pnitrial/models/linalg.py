"""Small dense linear algebra vectorised over a leading (outcome) axis, for the batched engines.

LAPACK's batched calls cost microseconds per matrix; for small p, loops over p of length-K vector
operations are an order of magnitude faster, and exact all the same. From LAPACK_MIN_P columns on
(long designs: many visits, many covariates) the loops cost more than LAPACK, which then factors
each matrix on its own. The choice depends on p only, so an outcome's bits never depend on which
outcomes share its batch.
"""

from __future__ import annotations

import numpy as np

__all__ = ["chol", "chol_inv", "chol_solve", "colsum", "dot", "gram", "mm", "sym2_pinv", "vsum"]

LAPACK_MIN_P = 10


def chol(A: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a stack of SPD matrices (K, p, p); NaN where not SPD.

    Parameters
    ----------
    A : ndarray, shape (K, p, p)
        Symmetric matrices, one per outcome.

    Returns
    -------
    ndarray, shape (K, p, p)
        Lower-triangular L with L L' = A; a matrix that is not positive definite gets NaN
        from its first non-positive pivot on, and the others are unaffected.

    Examples
    --------
    >>> A = np.array([[[4.0, 2.0], [2.0, 3.0]], [[1.0, 2.0], [2.0, 1.0]]])
    >>> L = chol(A)
    >>> L[0].round(6).tolist(), bool(np.isnan(L[1]).any())
    ([[2.0, 0.0], [1.0, 1.414214]], True)
    """
    p = A.shape[-1]
    if p >= LAPACK_MIN_P:
        return _lapack_chol(A)
    L = np.zeros_like(A)
    for j in range(p):
        d = A[:, j, j].copy()
        for r in range(j):
            d -= L[:, j, r] * L[:, j, r]
        with np.errstate(invalid="ignore"):
            L[:, j, j] = np.sqrt(np.where(d > 0, d, np.nan))
        for i in range(j + 1, p):
            e = A[:, i, j].copy()
            for r in range(j):
                e -= L[:, i, r] * L[:, j, r]
            L[:, i, j] = e / L[:, j, j]
    return L


def chol_solve(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve (L L') x = b for stacks; b is (K, p) or (K, p, r).

    Parameters
    ----------
    L : ndarray, shape (K, p, p)
        Lower Cholesky factors, as from `chol`.
    b : ndarray, shape (K, p) or (K, p, r)
        Right-hand sides, one vector or matrix per outcome.

    Returns
    -------
    ndarray
        x of the shape of `b`.

    Examples
    --------
    >>> A = np.array([[[4.0, 2.0], [2.0, 3.0]]])
    >>> x = chol_solve(chol(A), np.array([[2.0, 1.0]]))
    >>> x.round(6).tolist(), (A[0] @ x[0]).round(6).tolist()
    ([[0.5, 0.0]], [2.0, 1.0])
    """
    vec = b.ndim == 2
    p = L.shape[-1]
    if p >= LAPACK_MIN_P:
        x = _lapack_solve(np.swapaxes(L, 1, 2), _lapack_solve(L, b[:, :, None] if vec else b))
        return x[:, :, 0] if vec else x
    x = b[:, :, None].copy() if vec else b.copy()
    for i in range(p):  # forward
        for r in range(i):
            x[:, i] -= L[:, i, r, None] * x[:, r]
        x[:, i] /= L[:, i, i, None]
    for i in reversed(range(p)):  # backward with L'
        for r in range(i + 1, p):
            x[:, i] -= L[:, r, i, None] * x[:, r]
        x[:, i] /= L[:, i, i, None]
    return x[:, :, 0] if vec else x


def _lapack_chol(A: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.cholesky(A)
    except np.linalg.LinAlgError:  # one matrix is not SPD: factor each, NaN for the failures
        out = np.full_like(A, np.nan)
        for k, a in enumerate(A):
            try:
                out[k] = np.linalg.cholesky(a)
            except np.linalg.LinAlgError:
                pass
        return out


def _lapack_solve(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    try:
        with np.errstate(invalid="ignore"):
            return np.linalg.solve(A, b)
    except np.linalg.LinAlgError:  # NaN factors of failed outcomes
        out = np.full(b.shape, np.nan)
        for k in range(len(A)):
            try:
                out[k] = np.linalg.solve(A[k], b[k])
            except np.linalg.LinAlgError:
                pass
        return out


def chol_inv(L: np.ndarray) -> np.ndarray:
    """Inverses (L L')^-1 of a stack of Cholesky factors.

    Parameters
    ----------
    L : ndarray, shape (K, p, p)
        Lower Cholesky factors, as from `chol`.

    Returns
    -------
    ndarray, shape (K, p, p)
        The inverse of each L L'.

    Examples
    --------
    >>> A = np.array([[[4.0, 2.0], [2.0, 3.0]]])
    >>> bool(np.allclose(chol_inv(chol(A))[0], np.linalg.inv(A[0])))
    True
    """
    K, p, _ = L.shape
    return chol_solve(L, np.broadcast_to(np.eye(p), (K, p, p)))


def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot products over the last axis (explicit adds when it is short).

    Parameters
    ----------
    a, b : ndarray
        Arrays of the same shape (..., r).

    Returns
    -------
    ndarray, shape (...)
        sum_i a[..., i] b[..., i], accumulated in index order for r <= 16.

    Examples
    --------
    >>> dot(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 1.0], [2.0, 0.5]])).tolist()
    [3.0, 8.0]
    """
    if a.shape[-1] > 16:
        return (a * b).sum(axis=-1)
    acc = a[..., 0] * b[..., 0]
    for i in range(1, a.shape[-1]):
        acc = acc + a[..., i] * b[..., i]
    return acc


def mm(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Stacked small matrix products, accumulated in a fixed order (batch-size independent).

    Parameters
    ----------
    A : ndarray, shape (..., n, k)
    B : ndarray, shape (..., k, r)

    Returns
    -------
    ndarray, shape (..., n, r)
        A @ B, each entry summed over k in index order.

    Examples
    --------
    >>> mm(np.arange(8.0).reshape(2, 2, 2), np.ones((2, 2, 2))).tolist()
    [[[1.0, 1.0], [5.0, 5.0]], [[9.0, 9.0], [13.0, 13.0]]]
    """
    acc = A[..., :, 0, None] * B[..., None, 0, :]
    for k in range(1, A.shape[-1]):
        acc += A[..., :, k, None] * B[..., None, k, :]
    return acc


def gram(A: np.ndarray) -> np.ndarray:
    """A'A per outcome for A (K, n, r): one contiguous row-wise dot per pair of columns.

    Parameters
    ----------
    A : ndarray, shape (K, n, r)

    Returns
    -------
    ndarray, shape (K, r, r)
        The symmetric cross-product of each outcome's matrix.

    Examples
    --------
    >>> A = np.arange(12.0).reshape(2, 3, 2)
    >>> gram(A)[0].tolist(), bool(np.allclose(gram(A), np.swapaxes(A, 1, 2) @ A))
    ([[20.0, 26.0], [26.0, 35.0]], True)
    """
    At = np.ascontiguousarray(np.swapaxes(A, 1, 2))
    r = At.shape[1]
    G = np.empty((At.shape[0], r, r))
    for i in range(r):
        for j in range(i + 1):
            G[:, i, j] = G[:, j, i] = dot(At[:, i], At[:, j])
    return G


def vsum(w: np.ndarray, S: np.ndarray) -> np.ndarray:
    """sum_v w[k, v] S[k, v, ...]: weights by cluster size applied to per-size statistics.

    Parameters
    ----------
    w : ndarray, shape (K, V)
        A weight per outcome and cluster size.
    S : ndarray, shape (K, V, ...)
        A statistic per outcome and cluster size.

    Returns
    -------
    ndarray, shape (K, ...)
        The weighted sums, accumulated over v in order.

    Examples
    --------
    >>> vsum(np.array([[1.0, 2.0]]), np.array([[[1.0, 1.0], [10.0, 20.0]]])).tolist()
    [[21.0, 41.0]]
    """
    pad = (1,) * (S.ndim - 2)
    acc = w[:, 0].reshape(-1, *pad) * S[:, 0]
    for v in range(1, S.shape[1]):
        acc += w[:, v].reshape(-1, *pad) * S[:, v]
    return acc


def sym2_pinv(a: np.ndarray, b: np.ndarray, c: np.ndarray, tol: float) -> tuple[np.ndarray, ...]:
    """Pseudo-inverse of [[a, b], [b, c]] over eigenvalues > tol; returns its three entries.

    Parameters
    ----------
    a, b, c : ndarray, shape (K,)
        Entries of K symmetric 2 x 2 matrices.
    tol : float
        Eigenvalues at or below `tol` are treated as zero.

    Returns
    -------
    tuple of ndarray
        The entries (1, 1), (1, 2) and (2, 2) of each Moore-Penrose pseudo-inverse.

    Examples
    --------
    >>> a, b, c = sym2_pinv(np.array([2.0, 1.0]), np.array([1.0, 1.0]), np.array([2.0, 1.0]), 1e-10)
    >>> [round(float(v[0]), 6) for v in (a, b, c)], [round(float(v[1]), 6) for v in (a, b, c)]
    ([0.666667, -0.333333, 0.666667], [0.25, 0.25, 0.25])
    """
    mean, half = (a + c) / 2, np.sqrt(((a - c) / 2) ** 2 + b**2)
    out = [np.zeros_like(a) for _ in range(3)]
    for ev in (mean + half, mean - half):
        # eigenvector from whichever row of (M - ev I) is better conditioned
        v1 = np.stack([b, ev - a], axis=1)
        v2 = np.stack([ev - c, b], axis=1)
        v = np.where((dot(v1, v1) >= dot(v2, v2))[:, None], v1, v2)
        nrm = np.sqrt(dot(v, v))
        degenerate = nrm == 0  # a diagonal matrix: the axes are the eigenvectors
        axis = np.where((np.abs(ev - a) <= np.abs(ev - c))[:, None], [1.0, 0.0], [0.0, 1.0])
        v = np.where(degenerate[:, None], axis, v / np.where(degenerate, 1, nrm)[:, None])
        w = np.where(ev > tol, 1.0 / np.where(ev > tol, ev, 1.0), 0.0)
        out[0] += w * v[:, 0] ** 2
        out[1] += w * v[:, 0] * v[:, 1]
        out[2] += w * v[:, 1] ** 2
    return tuple(out)


# -- sufficient statistics --------------------------------------------------------------------


def colsum(A: np.ndarray) -> np.ndarray:
    """Sums over the leading (row) axis, in one summation order whatever the number of columns.

    reduceat keeps one summation order per column whatever the number of columns; ndarray.sum
    switches algorithm for a single column.

    Parameters
    ----------
    A : ndarray, shape (n, ...)

    Returns
    -------
    ndarray, shape (...)
        The sum over rows.

    Examples
    --------
    >>> colsum(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])).tolist()
    [9.0, 12.0]
    """
    return np.add.reduceat(A, [0], axis=0)[0]
