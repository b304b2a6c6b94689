"""Kenward-Roger adjusted covariance and denominator df, as pbkrtest computes them.

The marginal covariance is a linear combination Sigma = sum_r gamma_r G_r of known
matrices (one per random-effect (co)variance, then the residual variance); all
of them are block-diagonal by participant, so every trace is a sum over blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from pnitrial.models.engine import LMMFit


@dataclass
class KRBasis:
    """vcovAdj's output: adjusted covariance and the P_r, W needed for every df."""

    phi: np.ndarray  # unadjusted Var(beta-hat)
    phi_adj: np.ndarray  # Phi_A
    P: list[np.ndarray]
    W: np.ndarray


def _g_blocks(Z: np.ndarray) -> list[np.ndarray]:
    """G_r restricted to one participant's rows: Z_j Z_k' (+ transpose), then I."""
    q = Z.shape[-1]
    blocks = []
    for j in range(q):
        for k in range(j, q):
            zz = Z[..., :, j, None] * Z[..., None, :, k]
            blocks.append(zz if j == k else zz + np.swapaxes(zz, -1, -2))
    eye = np.broadcast_to(np.eye(Z.shape[-2]), Z.shape[:-2] + (Z.shape[-2],) * 2)
    return [*blocks, eye]


def kr_vcov_adjusted(fit: LMMFit) -> KRBasis:
    """Phi_A = Phi + 2 Phi U Phi (Kenward & Roger 1997, Biometrics 53:983; pbkrtest vcovAdj)."""
    d, phi = fit.data, fit.vcov
    D = fit.random_cov
    s2 = fit.sigma**2
    q = d.q
    n_par = q * (q + 1) // 2 + 1
    p = d.p
    P = [np.zeros((p, p)) for _ in range(n_par)]
    Q = {(r, s): np.zeros((p, p)) for r in range(n_par) for s in range(r, n_par)}
    K = np.zeros((n_par, n_par))
    sizes = np.bincount(d.group)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    for size in np.unique(sizes):
        rows = starts[sizes == size][:, None] + np.arange(size)  # (k, size)
        Xg, Zg = d.X[rows], d.Z[rows]
        sigma_g = np.einsum("gia,ab,gjb->gij", Zg, D, Zg) + s2 * np.eye(size)
        vinv = np.linalg.inv(sigma_g)
        H = [G @ vinv for G in _g_blocks(Zg)]
        HX = [h @ Xg for h in H]
        TT = vinv @ Xg
        for r in range(n_par):
            P[r] -= np.einsum("gsa,gsb->ab", HX[r], TT)
            for s in range(r, n_par):
                Q[r, s] += np.einsum("gsa,gst,gtb->ab", HX[r], vinv, HX[s])
                K[r, s] += np.einsum("gij,gji->", H[r], H[s])
    P = [(m + m.T) / 2 for m in P]  # pbkrtest forceSymmetric()
    info = np.empty((n_par, n_par))
    for r in range(n_par):
        for s in range(r, n_par):
            info[r, s] = info[s, r] = K[r, s] - 2 * np.sum(phi * Q[r, s]) + np.sum((phi @ P[r]) * (P[s] @ phi))
    condi = np.min(np.abs(np.linalg.eigvalsh(info)))
    W = 2 * (np.linalg.inv(info) if condi > 1e-10 else np.linalg.pinv(info))
    U = np.zeros((p, p))
    for r in range(n_par):
        for s in range(r + 1, n_par):
            U += W[r, s] * (Q[r, s] - P[r] @ phi @ P[s])
    U = U + U.T
    for r in range(n_par):
        U += W[r, r] * (Q[r, r] - P[r] @ phi @ P[r])
    return KRBasis(phi=phi, phi_adj=phi + 2 * phi @ U @ phi, P=P, W=W)


@dataclass
class KRTest:
    ndf: int
    ddf: float
    scaling: float
    F: float
    p: float


def _div_zero(x: float, y: float, tol: float = 1e-14) -> float:
    return 1.0 if abs(x) < tol and abs(y) < tol else x / y


def kenward_roger_df(L: np.ndarray, basis: KRBasis) -> tuple[float, float]:
    """Denominator df m and F scaling lambda for H0: L beta = 0 (Kenward & Roger 1997, eq. 3.3)."""
    L = np.atleast_2d(np.asarray(L, dtype=float))
    phi = basis.phi
    theta = L.T @ np.linalg.solve(L @ phi @ L.T, L)
    tp = theta @ phi
    n_par = len(basis.P)
    u = [tp @ Pr @ phi for Pr in basis.P]
    A1 = A2 = 0.0
    for i in range(n_par):
        for j in range(i, n_par):
            e = 1.0 if i == j else 2.0
            A1 += e * basis.W[i, j] * np.trace(u[i]) * np.trace(u[j])
            A2 += e * basis.W[i, j] * np.sum(u[i] * u[j].T)
    q = L.shape[0]
    B = (A1 + 6 * A2) / (2 * q)
    g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
    denom = 3 * q + 2 * (1 - g)
    c1, c2, c3 = g / denom, (q - g) / denom, (q + 2 - g) / denom
    v0 = 1 + c1 * B
    v0 = 0.0 if abs(v0) < 1e-10 else v0
    v1, v2 = 1 - c2 * B, 1 - c3 * B
    rho = _div_zero(1 - A2 / q, v1) ** 2 * v0 / v2 / q
    m = 4 + (q + 2) / (q * rho - 1)
    scaling = 1.0 if abs(m - 2) < 1e-2 else m * (1 - A2 / q) / (m - 2)
    return float(m), float(scaling)


def kenward_roger_ftest(L: np.ndarray, beta: np.ndarray, basis: KRBasis) -> KRTest:
    """Scaled Wald F with KR df (pbkrtest KRmodcomp)."""
    L = np.atleast_2d(np.asarray(L, dtype=float))
    q = int(np.linalg.matrix_rank(L))
    m, scaling = kenward_roger_df(L, basis)
    lb = L @ beta
    wald = float(lb @ np.linalg.solve(L @ basis.phi_adj @ L.T, lb))
    F = scaling * wald / q
    return KRTest(ndf=q, ddf=m, scaling=scaling, F=F, p=float(stats.f.sf(F, q, m)))
