"""Satterthwaite denominator degrees of freedom as computed by lmerTest.

Parameters tau = (theta, sigma); Cov(tau-hat) = 2 H^+ with H the Hessian of the
(RE)ML deviance in tau; J_k = d Var(beta-hat) / d tau_k. `satterthwaite_basis` differentiates
numerically, as lmerTest does, for any random-effects structure; `satterthwaite_batch` writes
H and J in closed form for a random intercept, for every outcome of a batched fit at once.
Both feed one formula, `satterthwaite_nu`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pnitrial.models import numderiv
from pnitrial.models.batch import BatchFit
from pnitrial.models.engine import LMMFit, covbeta_varpar, deviance_varpar
from pnitrial.models.intercept import lambda_derivatives
from pnitrial.models.linalg import chol_inv, dot, mm, sym2_pinv
from pnitrial.models.mmrm import MMRMFit

# lmerTest's tolerance for zero eigenvalues of the deviance Hessian.
EIGEN_TOL = 1e-8


@dataclass
class SatterthwaiteBasis:
    """What every Satterthwaite df needs, computed once per fit."""

    vcov_varpar: np.ndarray  # Cov(tau-hat)
    jacobian: np.ndarray  # (p, p, k): d Var(beta)/d tau_k
    warnings: list[str]


def satterthwaite_basis(fit: LMMFit) -> SatterthwaiteBasis:
    """Cov(tau-hat) and the Jacobian of Var(beta-hat) by numerical differentiation (Kuznetsova et al. 2017, JSS 82(13)).

    Parameters
    ----------
    fit : LMMFit
        A fit of the single-fit engine, any random-effects structure.

    Returns
    -------
    SatterthwaiteBasis
        What every Satterthwaite df of this fit needs, with warnings about the deviance Hessian.

    Examples
    --------
    >>> import numpy as np
    >>> from pnitrial.models.engine import ModelData, fit_lmm
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(20), 2); t = np.tile([0.0, 1.0], 20); arm = (g % 2).astype(float)
    >>> X = np.column_stack([np.ones(40), arm, t, arm * t])
    >>> y = X @ [1, 0.5, 0.2, 0.8] + rng.normal(size=20)[g] + rng.normal(size=40)
    >>> fit = fit_lmm(ModelData(X, np.ones((40, 1)), y, g, ("(Intercept)", "arm", "time", "arm:time")))
    >>> basis = satterthwaite_basis(fit)
    >>> basis.vcov_varpar.shape, basis.jacobian.shape
    ((2, 2), (4, 4, 2))
    """
    st, tau = fit.stats, fit.varpar
    H = numderiv.hessian(lambda v: deviance_varpar(v, st, fit.reml), tau)
    vals, vecs = np.linalg.eigh((H + H.T) / 2)
    warnings = []
    if np.any(vals < -EIGEN_TOL):
        warnings.append("deviance Hessian has negative eigenvalues: model may not have converged")
    if np.any(np.abs(vals) <= EIGEN_TOL):
        warnings.append("deviance Hessian has eigenvalues close to zero")
    pos = vals > EIGEN_TOL
    h_inv = (vecs[:, pos] / vals[pos]) @ vecs[:, pos].T
    jac = numderiv.jacobian(lambda v: covbeta_varpar(v, st), tau)
    return SatterthwaiteBasis(vcov_varpar=2 * h_inv, jacobian=jac, warnings=warnings)


def satterthwaite_df(L: np.ndarray, vcov: np.ndarray, basis: SatterthwaiteBasis) -> float:
    """nu = 2 (L'VL)^2 / (g' Cov(tau) g), g_k = L' J_k L (Satterthwaite 1946, Biometrics 2:110; lmerTest contest1D).

    Examples
    --------
    >>> import numpy as np
    >>> from pnitrial.models.engine import ModelData, fit_lmm
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(20), 2); t = np.tile([0.0, 1.0], 20); arm = (g % 2).astype(float)
    >>> X = np.column_stack([np.ones(40), arm, t, arm * t])
    >>> y = X @ [1, 0.5, 0.2, 0.8] + rng.normal(size=20)[g] + rng.normal(size=40)
    >>> fit = fit_lmm(ModelData(X, np.ones((40, 1)), y, g, ("(Intercept)", "arm", "time", "arm:time")))
    >>> round(satterthwaite_df(np.array([0, 0, 0, 1.0]), fit.vcov, satterthwaite_basis(fit)), 3)
    18.0
    """
    L = np.asarray(L, dtype=float)
    var = float(L @ vcov @ L)
    g = np.einsum("i,ijk,j->k", L, basis.jacobian, L)
    return float(satterthwaite_nu(var, float(g @ basis.vcov_varpar @ g)))


def satterthwaite_nu(var, denom):
    """nu = 2 Var(L'beta)^2 / Var(Var(L'beta)-hat), infinite when the variance is known (Satterthwaite 1946).

    Examples
    --------
    >>> float(satterthwaite_nu(2.0, 0.5)), float(satterthwaite_nu(2.0, 0.0))
    (16.0, inf)
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, 2 * np.square(var) / denom, np.inf)


def fai_cornelius_df(Lmat: np.ndarray, vcov: np.ndarray, basis: SatterthwaiteBasis) -> float:
    """Multi-df F denominator df (Fai & Cornelius 1996, J Stat Comput Simul 54:363; lmerTest contestMD).

    Examples
    --------
    >>> import numpy as np
    >>> from pnitrial.models.engine import ModelData, fit_lmm
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(20), 2); t = np.tile([0.0, 1.0], 20); arm = (g % 2).astype(float)
    >>> X = np.column_stack([np.ones(40), arm, t, arm * t])
    >>> y = X @ [1, 0.5, 0.2, 0.8] + rng.normal(size=20)[g] + rng.normal(size=40)
    >>> fit = fit_lmm(ModelData(X, np.ones((40, 1)), y, g, ("(Intercept)", "arm", "time", "arm:time")))
    >>> round(fai_cornelius_df(np.eye(4)[[1, 3]], fit.vcov, satterthwaite_basis(fit)), 2)
    28.7
    """
    Lmat = np.atleast_2d(np.asarray(Lmat, dtype=float))
    d, P = np.linalg.eigh(Lmat @ vcov @ Lmat.T)
    order = np.argsort(d)[::-1]
    d, P = d[order], P[:, order]
    pos = d > max(np.finfo(float).eps ** 0.5 * d[0], 0)
    PtL = (P.T @ Lmat)[pos]
    nu = np.array([satterthwaite_df(row, vcov, basis) for row in PtL])
    if len(nu) == 1 or np.all(np.abs(nu - nu[0]) < 1e-8):
        return float(nu[0])
    if np.any(nu <= 2):
        return 2.0
    E = float(np.sum(nu / (nu - 2)))
    return 2 * E / (E - len(nu))


# -- random intercept, closed form, many outcomes at once ------------------------------------


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
    inv = sym2_pinv(h_tt, h_ts, h_ss, EIGEN_TOL)
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
    return satterthwaite_nu(var, g_t**2 * tt + 2 * g_t * g_s * ts + g_s**2 * ss)


# -- residual covariance over visits (MMRM) ---------------------------------------------------


def satterthwaite_basis_mmrm(fit: MMRMFit) -> SatterthwaiteBasis:
    """Cov(theta-hat) and dVar(beta-hat)/dtheta_k = -Phi P_k Phi in closed form for an MMRM (mmrm's Satterthwaite).

    Examples
    --------
    >>> import numpy as np
    >>> from pnitrial.models.mmrm import RepeatedData, fit_mmrm
    >>> rng = np.random.default_rng(3)
    >>> g = np.repeat(np.arange(30), 2); v = np.tile([0, 1], 30); arm = (g % 2).astype(float)
    >>> X = np.column_stack([np.ones(60), v, arm * v]).astype(float)
    >>> y = X @ [1.0, 0.5, -0.8] + np.repeat(rng.normal(size=30), 2) + rng.normal(size=60)
    >>> fit = fit_mmrm(RepeatedData(X, y, g, v, 2, ("a", "b", "c")), "us")
    >>> round(satterthwaite_df(np.array([0, 0, 1.0]), fit.vcov, satterthwaite_basis_mmrm(fit)), 2) > 20
    True
    """
    phi = fit.vcov
    jac = -np.einsum("ab,kbc,cd->adk", phi, fit.pieces.P, phi)
    return SatterthwaiteBasis(vcov_varpar=fit.theta_vcov, jacobian=jac, warnings=[])
