"""Kenward-Roger adjusted covariance and denominator df, as pbkrtest computes them.

The marginal covariance is a linear combination Sigma = sum_r gamma_r G_r of known
matrices (one per random-effect (co)variance, then the residual variance); all
of them are block-diagonal by participant, so every trace is a sum over blocks.
`kr_vcov_adjusted` forms those traces block by block for any random-effects structure;
`kenward_roger_batch` writes them out in closed form for compound symmetry and computes
them for every outcome of a batched fit at once. Both feed one df formula, `pbkrtest_ddf`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from pnitrial.models.batch import BatchFit
from pnitrial.models.engine import LMMFit
from pnitrial.models.linalg import chol_inv, dot, mm, sym2_pinv, vsum
from pnitrial.models.mmrm import MMRMFit, weighted_qr


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
    """Phi_A = Phi + 2 Phi U Phi, any random effects (Kenward & Roger 1997, Biometrics 53:983; pbkrtest vcovAdj).

    Parameters
    ----------
    fit : LMMFit
        A REML fit of the single-fit engine.

    Returns
    -------
    KRBasis
        The unadjusted and adjusted covariance of beta-hat and the P_r, W every df needs.

    Examples
    --------
    >>> import numpy as np
    >>> from pnitrial.models.engine import ModelData, fit_lmm
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(20), 2); t = np.tile([0.0, 1.0], 20); arm = (g % 2).astype(float)
    >>> X = np.column_stack([np.ones(40), arm, t, arm * t])
    >>> y = X @ [1, 0.5, 0.2, 0.8] + rng.normal(size=20)[g] + rng.normal(size=40)
    >>> fit = fit_lmm(ModelData(X, np.ones((40, 1)), y, g, ("(Intercept)", "arm", "time", "arm:time")))
    >>> basis = kr_vcov_adjusted(fit)
    >>> basis.phi_adj.shape, len(basis.P)  # P_r: one per variance parameter (intercept, residual)
    ((4, 4), 2)
    """
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


def pbkrtest_ddf(A1, A2, q):
    """Denominator df m and F scaling lambda from A1, A2 (Kenward & Roger 1997, eq. 3.3-3.5; pbkrtest Lb_ddf).

    pbkrtest's sequence kept step by step for its edge cases (v0 near 0, 0/0 taken as 1, m near 2);
    A1, A2 are floats for one contrast or arrays for a batch of outcomes.

    Examples
    --------
    >>> m, scaling = pbkrtest_ddf(0.1, 0.1, 1)
    >>> round(float(m), 6), round(float(scaling), 6)
    (20.0, 1.0)
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        B = (A1 + 6 * A2) / (2 * q)
        g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
        denom = 3 * q + 2 * (1 - g)
        c1, c2, c3 = g / denom, (q - g) / denom, (q + 2 - g) / denom
        v0 = 1 + c1 * B
        v0 = np.where(np.abs(v0) < 1e-10, 0.0, v0)
        v1, v2 = 1 - c2 * B, 1 - c3 * B
        ratio = np.where((np.abs(1 - A2 / q) < 1e-14) & (np.abs(v1) < 1e-14), 1.0, (1 - A2 / q) / v1)
        rho = ratio**2 * v0 / v2 / q
        m = 4 + (q + 2) / (q * rho - 1)
        scaling = np.where(np.abs(m - 2) < 1e-2, 1.0, m * (1 - A2 / q) / (m - 2))
    return m, scaling


def kenward_roger_df(L: np.ndarray, basis: KRBasis) -> tuple[float, float]:
    """Denominator df m and F scaling lambda for H0: L beta = 0 (Kenward & Roger 1997, eq. 3.3).

    Examples
    --------
    >>> import numpy as np
    >>> from pnitrial.models.engine import ModelData, fit_lmm
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(20), 2); t = np.tile([0.0, 1.0], 20); arm = (g % 2).astype(float)
    >>> X = np.column_stack([np.ones(40), arm, t, arm * t])
    >>> y = X @ [1, 0.5, 0.2, 0.8] + rng.normal(size=20)[g] + rng.normal(size=40)
    >>> fit = fit_lmm(ModelData(X, np.ones((40, 1)), y, g, ("(Intercept)", "arm", "time", "arm:time")))
    >>> m, scaling = kenward_roger_df(np.array([0, 0, 0, 1.0]), kr_vcov_adjusted(fit))
    >>> round(m, 4), scaling
    (18.0, 1.0)
    """
    L = np.atleast_2d(np.asarray(L, dtype=float))
    phi = basis.phi
    # with Theta = L' (L phi L')^-1 L, tr(Theta phi P_k phi) and its products reduce to q x q
    # matrices M^-1 V_k, V_k = L phi P_k phi L': no p x p product per covariance parameter
    G = L @ phi
    n_par = len(basis.P)
    MV = np.linalg.solve(G @ L.T, G @ np.asarray(basis.P) @ G.T)  # (K, q, q)
    traces = np.trace(MV, axis1=1, axis2=2)
    A1 = float(traces @ basis.W @ traces)
    A2 = float(np.sum(basis.W * (MV.reshape(n_par, -1) @ MV.transpose(0, 2, 1).reshape(n_par, -1).T)))
    m, scaling = pbkrtest_ddf(A1, A2, L.shape[0])
    return float(m), float(scaling)


def kenward_roger_ftest(L: np.ndarray, beta: np.ndarray, basis: KRBasis) -> KRTest:
    """Scaled Wald F with KR df for H0: L beta = 0 (Kenward & Roger 1997; pbkrtest KRmodcomp).

    Examples
    --------
    >>> import numpy as np
    >>> from pnitrial.models.engine import ModelData, fit_lmm
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(20), 2); t = np.tile([0.0, 1.0], 20); arm = (g % 2).astype(float)
    >>> X = np.column_stack([np.ones(40), arm, t, arm * t])
    >>> y = X @ [1, 0.5, 0.2, 0.8] + rng.normal(size=20)[g] + rng.normal(size=40)
    >>> fit = fit_lmm(ModelData(X, np.ones((40, 1)), y, g, ("(Intercept)", "arm", "time", "arm:time")))
    >>> test = kenward_roger_ftest(np.eye(4)[[1, 3]], fit.beta, kr_vcov_adjusted(fit))
    >>> test.ndf, round(test.ddf, 2)
    (2, 23.3)
    """
    L = np.atleast_2d(np.asarray(L, dtype=float))
    q = int(np.linalg.matrix_rank(L))
    m, scaling = kenward_roger_df(L, basis)
    lb = L @ beta
    wald = float(lb @ np.linalg.solve(L @ basis.phi_adj @ L.T, lb))
    F = scaling * wald / q
    return KRTest(ndf=q, ddf=m, scaling=scaling, F=F, p=float(stats.f.sf(F, q, m)))


# -- random intercept, closed form, many outcomes at once ------------------------------------


@dataclass
class KenwardRogerBatch:
    phi: np.ndarray  # (K, p, p) unadjusted Var(beta)
    phi_adj: np.ndarray  # Phi_A
    P: tuple[np.ndarray, np.ndarray]  # (K, p, p) each, for sigma_u^2 then sigma^2
    W: tuple[np.ndarray, np.ndarray, np.ndarray]  # 2 x inverse expected information: (11, 12, 22)


def kenward_roger_batch(fit: BatchFit) -> KenwardRogerBatch:
    """Phi_A for a random intercept in closed form, every outcome at once (Kenward & Roger 1997; pbkrtest vcovAdj).

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
    pinv = np.stack(sym2_pinv(i11, i12, i22, 0.0))
    inv = np.where(condi > 1e-10, inv, pinv)
    w11, w12, w22 = 2 * inv
    U12 = Q12 - mm(mm(P1, phi), P2)
    U = w12[:, None, None] * (U12 + U12.swapaxes(1, 2))
    U += w11[:, None, None] * (Q11 - mm(mm(P1, phi), P1))
    U += w22[:, None, None] * (Q22 - mm(mm(P2, phi), P2))
    phi_adj = phi + 2 * mm(mm(phi, U), phi)
    return KenwardRogerBatch(phi, phi_adj, (P1, P2), (w11, w12, w22))


def kenward_roger_df_batch(L: np.ndarray, basis: KenwardRogerBatch) -> np.ndarray:
    """KR denominator df of one contrast for every outcome of a batch (Kenward & Roger 1997, eq. 3.3, with q = 1).

    Examples
    --------
    >>> import numpy as np
    >>> from pnitrial.models.batch import fit_batch
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(20), 2); t = np.tile([0.0, 1.0], 20); arm = (g % 2).astype(float)
    >>> X = np.column_stack([np.ones(40), arm, t, arm * t])
    >>> Y = (X @ [1, 0.5, 0.2, 0.8])[:, None] + rng.normal(size=(20, 3))[g] + rng.normal(size=(40, 3))
    >>> df = kenward_roger_df_batch(np.array([0, 0, 0, 1.0]), kenward_roger_batch(fit_batch(X, g, Y)))
    >>> np.round(df, 4).tolist()
    [18.0, 18.0, 18.0]
    """
    Lk = np.broadcast_to(L, basis.phi.shape[:2])
    phiL = (basis.phi * Lk[:, None, :]).sum(axis=-1)
    s = dot(Lk, phiL)
    t1 = dot(phiL, (basis.P[0] * phiL[:, None, :]).sum(axis=-1)) / s
    t2 = dot(phiL, (basis.P[1] * phiL[:, None, :]).sum(axis=-1)) / s
    w11, w12, w22 = basis.W
    A = w11 * t1**2 + 2 * w12 * t1 * t2 + w22 * t2**2  # A1 = A2 when q = 1
    return pbkrtest_ddf(A, A, 1.0)[0]


# -- residual covariance over visits (MMRM) ---------------------------------------------------


def kr_vcov_adjusted_mmrm(fit: MMRMFit, linear: bool = False) -> KRBasis:
    """Phi_A for an MMRM, with the second-derivative term R unless linear (Kenward & Roger 1997, eq. 2.2; mmrm).

    mmrm's "Kenward-Roger" keeps R_ij = X' Sigma^-1 (d2 Sigma / dtheta_i dtheta_j) Sigma^-1 X, which
    vanishes for covariances linear in their parameters; "Kenward-Roger-Linear" drops it.
    W is Cov(theta-hat), the inverse Hessian of -log L.

    Examples
    --------
    >>> import numpy as np
    >>> from pnitrial.models.mmrm import RepeatedData, fit_mmrm
    >>> rng = np.random.default_rng(3)
    >>> g = np.repeat(np.arange(30), 2); v = np.tile([0, 1], 30); arm = (g % 2).astype(float)
    >>> X = np.column_stack([np.ones(60), v, arm * v]).astype(float)
    >>> y = X @ [1.0, 0.5, -0.8] + np.repeat(rng.normal(size=30), 2) + rng.normal(size=60)
    >>> basis = kr_vcov_adjusted_mmrm(fit_mmrm(RepeatedData(X, y, g, v, 2, ("a", "b", "c")), "us"))
    >>> len(basis.P), basis.phi_adj.shape
    (3, (3, 3))
    """
    pc, phi, W = fit.pieces, fit.vcov, fit.theta_vcov
    WQ, WR = weighted_qr(fit, W)
    K, p = len(pc.P), len(phi)
    B = (W @ pc.P.reshape(K, -1)).reshape(K, p, p)  # sum_l W_kl P_l
    PphiP = np.einsum("kab,kbc->ac", pc.P @ phi, B)
    U = WQ - PphiP - (0.0 if linear else 0.25 * WR)
    return KRBasis(phi=phi, phi_adj=phi + 2 * phi @ U @ phi, P=list(pc.P), W=W)
