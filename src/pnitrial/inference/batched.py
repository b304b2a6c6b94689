"""Small-sample inference for batched random-intercept fits, in closed form.

The same quantities as the single-fit modules (satterthwaite.py, kenward_roger.py) give, but
with every derivative and trace written out for compound symmetry, Sigma_g = sigma^2 (I +
lambda 11'), from the per-cluster-size statistics of batch.py: no numerical differentiation,
no n x n matrices, and one vectorised pass over all outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pnitrial.inference.contrasts import METHODS
from pnitrial.inference.satterthwaite import EIGEN_TOL
from pnitrial.inference.wald import wald
from pnitrial.models.batch import BatchFit, lambda_derivatives
from pnitrial.models.linalg import chol_inv, dot, mm, vsum


@dataclass
class BatchEstimates:
    """One linear combination L'beta per outcome."""

    estimate: np.ndarray
    se: np.ndarray
    df: np.ndarray
    statistic: np.ndarray
    statistic_type: str
    p: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray


def _sym2_pinv(a: np.ndarray, b: np.ndarray, c: np.ndarray, tol: float) -> tuple[np.ndarray, ...]:
    """Pseudo-inverse of [[a, b], [b, c]] over eigenvalues > tol; returns its three entries."""
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


@dataclass
class SatterthwaiteBatch:
    cov_tau: tuple[np.ndarray, np.ndarray, np.ndarray]  # Cov(theta, sigma): (tt, ts, ss)
    theta_weight: np.ndarray  # (K, p, p) 2 theta sigma^2 C^-1 UtU C^-1 = dVar(beta)/dtheta
    Cinv: np.ndarray


def satterthwaite_batch(fit: BatchFit) -> SatterthwaiteBatch:
    """lmerTest's Cov(tau) = 2 H^-1 with H the analytic Hessian of the deviance in (theta, sigma)."""
    st, pr = fit.stats, fit.profile
    der = lambda_derivatives(pr, st, fit.reml)
    theta = np.nan_to_num(fit.theta, nan=1.0)
    lam, sig = theta**2, np.nan_to_num(fit.sigma, nan=1.0)
    s2 = sig**2
    h_tt = 2 * (der.f1 + der.r1 / s2) + 4 * lam * (der.f2 + der.r2 / s2)
    h_ts = -4 * theta * der.r1 / sig**3
    dof = st.n - st.p if fit.reml else st.n
    h_ss = 6 * der.r / s2**2 - 2 * dof / s2
    inv = _sym2_pinv(h_tt, h_ts, h_ss, EIGEN_TOL)
    Cinv = chol_inv(pr.L)
    jt = 2 * theta[:, None, None] * s2[:, None, None] * mm(mm(Cinv, der.UtU), Cinv)
    return SatterthwaiteBatch(tuple(2 * x for x in inv), jt, Cinv)


def satterthwaite_df_batch(L: np.ndarray, fit: BatchFit, basis: SatterthwaiteBatch) -> np.ndarray:
    """nu = 2 (L'VL)^2 / (g' Cov(tau) g) per outcome (Satterthwaite 1946; lmerTest contest1D)."""
    Lk = np.broadcast_to(L, fit.beta.shape)
    sig = fit.sigma
    lcl = dot(Lk, (basis.Cinv * Lk[:, None, :]).sum(axis=-1))
    var = sig**2 * lcl
    g_t = dot(Lk, (basis.theta_weight * Lk[:, None, :]).sum(axis=-1))
    g_s = 2 * sig * lcl
    tt, ts, ss = basis.cov_tau
    denom = g_t**2 * tt + 2 * g_t * g_s * ts + g_s**2 * ss
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, 2 * var**2 / denom, np.inf)


@dataclass
class KenwardRogerBatch:
    phi: np.ndarray  # (K, p, p) unadjusted Var(beta)
    phi_adj: np.ndarray  # Phi_A
    P: tuple[np.ndarray, np.ndarray]  # (K, p, p) each, for sigma_u^2 then sigma^2
    W: tuple[np.ndarray, np.ndarray, np.ndarray]  # 2 x inverse expected information: (11, 12, 22)


def kenward_roger_batch(fit: BatchFit) -> KenwardRogerBatch:
    """Phi_A = Phi + 2 Phi U Phi (Kenward & Roger 1997, Biometrics 53:983; pbkrtest vcovAdj).

    For Sigma_g = s_u 11' + s I the traces reduce to sums over cluster sizes v with
    h = 1/(1 + lambda v): Sigma_g^-k = s^-k (I + (h^k - 1)/v 11').
    """
    st, pr = fit.stats, fit.profile
    v, h, cnt = st.sizes, pr.h, st.count
    s2 = np.nan_to_num(fit.sigma, nan=1.0) ** 2
    SB = st.S[:, :, : st.p, : st.p]
    XtX = st.XtX
    k2, k3 = (s2**-2)[:, None, None], (s2**-3)[:, None, None]
    P1 = -k2 * vsum(h**2, SB)
    P2 = -k2 * (XtX + vsum((h**2 - 1) / v, SB))
    Q11 = k3 * vsum(v * h**3, SB)
    Q12 = k3 * vsum(h**3, SB)
    Q22 = k3 * (XtX + vsum((h**3 - 1) / v, SB))
    K11 = (cnt * (v * h) ** 2).sum(axis=1) / s2**2
    K12 = (cnt * v * h**2).sum(axis=1) / s2**2
    K22 = (cnt * (v + h**2 - 1)).sum(axis=1) / s2**2
    phi = s2[:, None, None] * chol_inv(pr.L)

    def tr(A: np.ndarray, B: np.ndarray) -> np.ndarray:
        return (A * np.swapaxes(B, 1, 2)).sum(axis=(1, 2))

    PhiP1, PhiP2 = mm(phi, P1), mm(phi, P2)
    i11 = K11 - 2 * tr(phi, Q11) + tr(PhiP1, PhiP1)
    i12 = K12 - 2 * tr(phi, Q12) + tr(PhiP1, PhiP2)
    i22 = K22 - 2 * tr(phi, Q22) + tr(PhiP2, PhiP2)
    det = i11 * i22 - i12**2
    mean, half = (i11 + i22) / 2, np.sqrt(((i11 - i22) / 2) ** 2 + i12**2)
    condi = np.minimum(np.abs(mean + half), np.abs(mean - half))
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(condi > 1e-10, np.stack([i22, -i12, i11]) / det, np.nan)
    pinv = np.stack(_sym2_pinv(i11, i12, i22, 0.0))
    inv = np.where(condi > 1e-10, inv, pinv)
    w11, w12, w22 = 2 * inv
    U12 = Q12 - mm(mm(P1, phi), P2)
    U = w12[:, None, None] * (U12 + U12.swapaxes(1, 2))
    U += w11[:, None, None] * (Q11 - mm(mm(P1, phi), P1))
    U += w22[:, None, None] * (Q22 - mm(mm(P2, phi), P2))
    phi_adj = phi + 2 * mm(mm(phi, U), phi)
    return KenwardRogerBatch(phi, phi_adj, (P1, P2), (w11, w12, w22))


def kenward_roger_df_batch(L: np.ndarray, basis: KenwardRogerBatch) -> np.ndarray:
    """KR denominator df of a single contrast (Kenward & Roger 1997, eq. 3.3, with q = 1)."""
    Lk = np.broadcast_to(L, basis.phi.shape[:2])
    phiL = (basis.phi * Lk[:, None, :]).sum(axis=-1)
    s = dot(Lk, phiL)
    t1 = dot(phiL, (basis.P[0] * phiL[:, None, :]).sum(axis=-1)) / s
    t2 = dot(phiL, (basis.P[1] * phiL[:, None, :]).sum(axis=-1)) / s
    w11, w12, w22 = basis.W
    A = w11 * t1**2 + 2 * w12 * t1 * t2 + w22 * t2**2  # A1 = A2 when q = 1
    # pbkrtest's Lb_ddf sequence for q = 1, kept step by step for its edge cases
    q = 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        B = (A + 6 * A) / (2 * q)
        g = ((q + 1) * A - (q + 4) * A) / ((q + 2) * A)
        denom = 3 * q + 2 * (1 - g)
        c1, c2, c3 = g / denom, (q - g) / denom, (q + 2 - g) / denom
        v0 = 1 + c1 * B
        v0 = np.where(np.abs(v0) < 1e-10, 0.0, v0)
        v1, v2 = 1 - c2 * B, 1 - c3 * B
        ratio = np.where((np.abs(1 - A / q) < 1e-14) & (np.abs(v1) < 1e-14), 1.0, (1 - A / q) / v1)
        rho = ratio**2 * v0 / v2 / q
        return 4 + (q + 2) / (q * rho - 1)


def batch_estimates(
    fit: BatchFit, L: np.ndarray, method: str = "kenward-roger", alpha: float = 0.05, basis=None
) -> BatchEstimates:
    """L'beta for every outcome with the method's SE and df; z-tests are labelled z."""
    if method not in METHODS:
        raise ValueError(f"unknown ddf method {method!r}; expected one of {METHODS}")
    Lk = np.broadcast_to(np.asarray(L, dtype=float), fit.beta.shape)
    est = dot(Lk, fit.beta)
    if method == "kenward-roger":
        basis = basis or kenward_roger_batch(fit)
        vcov, df = basis.phi_adj, kenward_roger_df_batch(L, basis)
    elif method == "satterthwaite":
        basis = basis or satterthwaite_batch(fit)
        vcov, df = fit.vcov, satterthwaite_df_batch(L, fit, basis)
    else:
        vcov, df = fit.vcov, np.full(len(est), np.inf)
    se = np.sqrt(dot(Lk, (vcov * Lk[:, None, :]).sum(axis=-1)))
    w = wald(est, se, df, alpha)
    return BatchEstimates(est, se, df, w.statistic, w.statistic_type, w.p, w.ci_low, w.ci_high)


def inference_basis(fit: BatchFit, method: str):
    """The per-fit part of a method, computed once and shared by every contrast."""
    if method == "kenward-roger":
        return kenward_roger_batch(fit)
    if method == "satterthwaite":
        return satterthwaite_batch(fit)
    return None
