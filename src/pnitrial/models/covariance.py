"""Residual covariance structures over visits, parameterised exactly as R's mmrm parameterises them.

Every structure maps an unconstrained vector theta to a T x T covariance matrix Sigma:
standard deviations are exp(theta), correlations x / sqrt(1 + x^2) of their theta (compound
symmetry: invlogit(x) (1 + a) - a with a = 1 / (T - 1), so that Sigma stays positive definite).
Unstructured (`us`) is Sigma = L L' with L_ii = exp(theta_i) and L_ij = exp(theta_i) theta_k below
the diagonal, row by row. Homogeneous structures share one standard deviation (theta_0);
heterogeneous ones (`csh`, `ar1h`, `toeph`, `adh`) have one per visit (theta_0 .. theta_{T-1}).
The functions accept complex theta, so first derivatives come exactly by the complex step.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "STRUCTURES",
    "DenseSecond",
    "UnstructuredSecond",
    "covariance",
    "covariance_derivatives",
    "n_theta",
    "start",
    "theta_from",
]

STRUCTURES = ("us", "cs", "csh", "ar1", "ar1h", "toep", "toeph", "ad", "adh")
_HETEROGENEOUS = {"csh": "cs", "ar1h": "ar1", "toeph": "toep", "adh": "ad"}
_COMPLEX_STEP = 1e-30


def n_theta(structure: str, T: int) -> int:
    """Number of covariance parameters of a structure over T visits (as mmrm counts them).

    Examples
    --------
    >>> [n_theta(s, 4) for s in STRUCTURES]
    [10, 2, 5, 2, 5, 4, 7, 4, 7]
    """
    sizes = {"us": T * (T + 1) // 2, "cs": 2, "ar1": 2, "toep": T, "ad": T}
    if structure in _HETEROGENEOUS:
        base = _HETEROGENEOUS[structure]
        return T + sizes[base] - 1
    if structure not in sizes:
        raise ValueError(f"unknown covariance structure {structure!r}; expected one of {STRUCTURES}")
    return sizes[structure]


def start(structure: str, T: int) -> np.ndarray:
    """mmrm's standard starting values: identity covariance, rho = 0.5 for the autoregressive structures.

    Examples
    --------
    >>> start("ar1h", 3).tolist()
    [0.0, 0.0, 0.0, 0.5]
    """
    theta = np.zeros(n_theta(structure, T))
    if structure in ("ar1", "ar1h"):
        theta[-1] = 0.5
    return theta


def theta_from(S: np.ndarray, structure: str) -> np.ndarray:
    """theta whose structure best resembles a covariance matrix S (moment matching), for a starting value.

    Examples
    --------
    >>> import numpy as np
    >>> S = covariance(np.array([0.3, -0.2, 0.7]), "us", 2)
    >>> np.round(theta_from(S, "us"), 6).tolist()
    [0.3, -0.2, 0.7]
    """
    T = len(S)
    sd = np.sqrt(np.clip(np.diag(S), 1e-8, None))
    R = np.clip(S / np.outer(sd, sd), -0.95, 0.95)
    if structure == "us":
        L = np.linalg.cholesky(S + 1e-8 * np.eye(T) * np.mean(np.diag(S)))
        return np.r_[np.log(np.diag(L)), [L[i, j] / L[i, i] for i in range(T) for j in range(i)]]

    def inv_cor(r):
        r = np.clip(r, -0.95, 0.95)
        return r / np.sqrt(1 - r * r)

    lag = [np.mean(np.diagonal(R, k)) for k in range(1, T)]
    base = _HETEROGENEOUS.get(structure, structure)
    if base == "cs":
        a = 1.0 / (T - 1)
        q = np.clip((np.mean(R[np.tril_indices(T, -1)]) + a) / (1 + a), 0.01, 0.99)
        corr = [np.log(q / (1 - q))]
    elif base == "ar1":
        corr = [inv_cor(lag[0])]
    elif base == "toep":
        corr = [inv_cor(r) for r in lag]
    else:  # ad
        corr = [inv_cor(R[i + 1, i]) for i in range(T - 1)]
    sds = np.log(sd) if structure in _HETEROGENEOUS else [np.log(np.sqrt(np.mean(sd**2)))]
    return np.r_[sds, corr]


def _cor(x):
    return x / np.sqrt(1.0 + x * x)


def _correlation(kind: str, c, T: int):
    """(..., T, T) correlation matrices of a homogeneous structure from correlation parameters c (..., n)."""
    dtype = np.result_type(c, float)
    lag = np.abs(np.subtract.outer(np.arange(T), np.arange(T)))
    if kind == "cs":
        a = 1.0 / (T - 1)
        v = (1.0 / (1.0 + np.exp(-c[..., 0]))) * (1.0 + a) - a
        return np.where(lag == 0, np.ones((), dtype), v[..., None, None])
    if kind == "ar1":
        return _cor(c[..., 0])[..., None, None] ** lag
    if kind == "toep":
        return np.concatenate([np.ones(c.shape[:-1] + (1,), dtype), _cor(c)], axis=-1)[..., lag]
    # ad: the product of the lag-one correlations between the two visits, built lag by lag
    cor = _cor(c)
    R = np.zeros(c.shape[:-1] + (T, T), dtype=dtype)
    R[..., np.arange(T), np.arange(T)] = 1.0
    for gap in range(1, T):
        i = np.arange(gap, T)
        R[..., i, i - gap] = R[..., i, i - gap + 1] * cor[..., i - gap]
    return R + np.swapaxes(R, -1, -2) - np.eye(T)


def covariance(theta: np.ndarray, structure: str, T: int) -> np.ndarray:
    """Sigma(theta) over T visits.

    Parameters
    ----------
    theta : ndarray
        The structure's parameters (real, or complex for the complex-step derivative).
    structure : str
        One of STRUCTURES.
    T : int
        Number of visits.

    Returns
    -------
    ndarray of shape (T, T)

    Examples
    --------
    >>> import numpy as np
    >>> S = covariance(np.array([np.log(2.0), 1.0]), "ar1", 3)
    >>> np.round(S, 4).tolist()[0]
    [4.0, 2.8284, 2.0]
    >>> covariance(np.zeros(3), "us", 2).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    theta = np.asarray(theta)
    if structure == "us":
        L = np.zeros(theta.shape[:-1] + (T, T), dtype=theta.dtype if np.iscomplexobj(theta) else float)
        sd = np.exp(theta[..., :T])
        k = T
        for i in range(T):
            L[..., i, i] = sd[..., i]
            for j in range(i):
                L[..., i, j] = sd[..., i] * theta[..., k]
                k += 1
        return L @ np.swapaxes(L, -1, -2)
    if structure in _HETEROGENEOUS:
        sd = np.exp(theta[..., :T])
        R = _correlation(_HETEROGENEOUS[structure], theta[..., T:], T)
    elif structure in ("cs", "ar1", "toep", "ad"):
        sd = np.exp(theta[..., :1]) * np.ones(T)
        R = _correlation(structure, theta[..., 1:], T)
    else:
        raise ValueError(f"unknown covariance structure {structure!r}; expected one of {STRUCTURES}")
    return sd[..., :, None] * R * sd[..., None, :]


class DenseSecond:
    """d2Sigma/dtheta_k dtheta_l held as a (..., K, K, T, T) array (structures with few parameters)."""

    def __init__(self, d2: np.ndarray):
        self.d2 = d2

    def dense(self) -> np.ndarray:
        return self.d2

    def traces(self, M: np.ndarray) -> np.ndarray:
        """(..., K, K) matrix of tr(d2Sigma_kl M) for symmetric T x T matrices M (...)."""
        K, T = self.d2.shape[-4], self.d2.shape[-1]
        flat = self.d2.reshape(self.d2.shape[:-4] + (K * K, T * T))
        return (flat @ M.reshape(M.shape[:-2] + (T * T, 1)))[..., 0].reshape(self.d2.shape[:-2])

    def weighted(self, W: np.ndarray) -> np.ndarray:
        """sum_kl W_kl d2Sigma_kl, a (..., T, T) matrix."""
        K, T = self.d2.shape[-4], self.d2.shape[-1]
        flat = self.d2.reshape(self.d2.shape[:-4] + (K * K, T * T))
        return (W.reshape(W.shape[:-2] + (1, K * K)) @ flat)[..., 0, :].reshape(self.d2.shape[:-4] + (T, T))


class UnstructuredSecond:
    """d2Sigma/dtheta_k dtheta_l of Sigma = L L' without forming the (K, K, T, T) array.

    dL_k = e_r u_k' has one non-zero row r_k (row i of L for log sd_i; sd_i e_j for L_ij), and the
    second derivatives of L are non-zero only within a row's log sd and its own entries, so the
    K^2 T^2 array reduces to K x K products: what makes a 12-visit unstructured fit (K = 78) fast.
    Every array may carry leading batch axes (one fit per analyte of a panel).
    """

    def __init__(self, L: np.ndarray, rows: np.ndarray, U: np.ndarray, below: list[tuple[int, int, int]]):
        self.L, self.rows, self.U, self.below = L, rows, U, below
        self.Sigma = L @ np.swapaxes(L, -1, -2)
        T = L.shape[-1]
        # the non-zero d2L_kl = e_i w': pairs (k, l), row i, and L w (..., npairs, T) for the
        # diagonal (w = row i of L, so L w = Sigma[:, i]) and each row's entries (w = sd_i e_j)
        self.a = np.array([i for i in range(T)] + [i for _, i, _ in below], dtype=int)
        self.b = np.array([i for i in range(T)] + [k for k, _, _ in below], dtype=int)
        self.i = np.array([i for i in range(T)] + [i for _, i, _ in below], dtype=int)
        sd = np.diagonal(L, axis1=-2, axis2=-1)
        js = np.array([j for _, _, j in below], dtype=int)
        iis = np.array([i for _, i, _ in below], dtype=int)
        self.Lw = np.concatenate(
            [np.swapaxes(self.Sigma, -1, -2)[..., :, :], sd[..., iis, None] * np.swapaxes(L, -1, -2)[..., js, :]],
            axis=-2,
        )  # (..., npairs, T): Sigma[:, i] for the diagonal, sd_i L[:, j] for L_ij

    def traces(self, M: np.ndarray) -> np.ndarray:
        """(..., K, K) matrix of tr(d2Sigma_kl M) for symmetric T x T matrices M (...)."""
        r = self.rows
        out = (self.U @ np.swapaxes(self.U, -1, -2)) * M[..., r[:, None], r[None, :]]
        v = np.sum(self.Lw * np.swapaxes(M, -1, -2)[..., self.i, :], axis=-1)  # (Lw)' M[:, i]
        np.add.at(out, (..., self.a, self.b), v)
        off = self.a != self.b
        np.add.at(out, (..., self.b[off], self.a[off]), v[..., off])
        return 2 * out

    def weighted(self, W: np.ndarray) -> np.ndarray:
        """sum_kl W_kl d2Sigma_kl, a (..., T, T) matrix."""
        T = self.L.shape[-1]
        K = len(self.rows)
        R = np.zeros((K, T))
        R[np.arange(K), self.rows] = 1.0
        B = R.T @ (W * (self.U @ np.swapaxes(self.U, -1, -2))) @ R
        off = self.a != self.b
        coef = W[..., self.a, self.b] + np.where(off, W[..., self.b, self.a], 0.0)  # (..., npairs)
        np.add.at(B, (..., self.i, slice(None)), coef[..., None] * self.Lw)
        return B + np.swapaxes(B, -1, -2)

    def dense(self) -> np.ndarray:
        K, T = len(self.rows), self.L.shape[-1]
        out = np.empty(self.L.shape[:-2] + (K, K, T, T))
        for a in range(K):
            for b in range(K):
                E = np.zeros((K, K))
                E[a, b] = 1.0
                out[..., a, b, :, :] = self.weighted(E)
        return out


def covariance_derivatives(theta: np.ndarray, structure: str, T: int, second: bool = True):
    """dSigma/dtheta_k (exact: analytic for us, by the complex step otherwise) and d2Sigma/dtheta_k dtheta_l.

    theta may carry leading batch axes (..., K); so do the results.

    Returns
    -------
    d1 : ndarray of shape (..., K, T, T)
    d2 : DenseSecond or UnstructuredSecond (traces(M), weighted(W), dense()), or None when `second` is False

    Examples
    --------
    >>> import numpy as np
    >>> d1, d2 = covariance_derivatives(np.zeros(2), "cs", 2)
    >>> np.round(d1[0], 6).tolist()  # d Sigma / d log sd = 2 Sigma
    [[2.0, 0.0], [0.0, 2.0]]
    >>> d2.dense().shape
    (2, 2, 2, 2)
    """
    theta = np.asarray(theta, dtype=float)
    K = theta.shape[-1]
    if structure == "us":
        return _us_derivatives(theta, T, second)

    def first(th):
        out = np.empty(th.shape[:-1] + (K, T, T))
        for k in range(K):
            z = th.astype(complex)
            z[..., k] += 1j * _COMPLEX_STEP
            out[..., k, :, :] = covariance(z, structure, T).imag / _COMPLEX_STEP
        return out

    d1 = first(theta)
    if not second:
        return d1, None
    d2 = np.empty(theta.shape[:-1] + (K, K, T, T))
    for k in range(K):
        h = 1e-5 * np.maximum(1.0, np.abs(theta[..., k]))
        up, down = theta.copy(), theta.copy()
        up[..., k] += h
        down[..., k] -= h
        d2[..., k, :, :, :] = (first(up) - first(down)) / (2 * np.asarray(h)[..., None, None, None])
    d2 = (d2 + np.swapaxes(d2, -4, -3)) / 2  # symmetric in (k, l) up to the differencing error
    return d1, DenseSecond(d2)


def _us_derivatives(theta: np.ndarray, T: int, second: bool):
    """Exact derivatives of Sigma = L L' for the unstructured parameterisation."""
    K = theta.shape[-1]
    batch = theta.shape[:-1]
    sd = np.exp(theta[..., :T])
    L = np.zeros(batch + (T, T))
    L[..., np.arange(T), np.arange(T)] = sd
    rows = np.empty(K, dtype=int)
    U = np.zeros(batch + (K, T))  # dL_k = e_{rows[k]} U[k]'
    below = []  # (theta index, i, j) of each strictly-lower element
    k = T
    for i in range(T):
        for j in range(i):
            L[..., i, j] = sd[..., i] * theta[..., k]
            below.append((k, i, j))
            k += 1
    rows[:T] = np.arange(T)
    U[..., :T, :] = L  # d/d log sd_i scales row i
    for k, i, j in below:
        rows[k] = i
        U[..., k, j] = sd[..., i]
    LU = U @ np.swapaxes(L, -1, -2)  # (..., K, T): L u_k
    d1 = np.zeros(batch + (K, T, T))
    d1[..., np.arange(K), rows, :] = LU
    d1 = d1 + np.swapaxes(d1, -1, -2)
    return d1, (UnstructuredSecond(L, rows, U, below) if second else None)
