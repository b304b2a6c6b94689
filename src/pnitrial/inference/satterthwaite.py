"""Satterthwaite denominator degrees of freedom as computed by lmerTest.

Parameters tau = (theta, sigma); Cov(tau-hat) = 2 H^+ with H the Hessian of the
(RE)ML deviance in tau; J_k = d Var(beta-hat) / d tau_k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pnitrial.models import numderiv
from pnitrial.models.engine import LMMFit, covbeta_varpar, deviance_varpar

# lmerTest's tolerance for zero eigenvalues of the deviance Hessian.
EIGEN_TOL = 1e-8


@dataclass
class SatterthwaiteBasis:
    """What every Satterthwaite df needs, computed once per fit."""

    vcov_varpar: np.ndarray  # Cov(tau-hat)
    jacobian: np.ndarray  # (p, p, k): d Var(beta)/d tau_k
    warnings: list[str]


def satterthwaite_basis(fit: LMMFit) -> SatterthwaiteBasis:
    """Cov(tau-hat) and Jacobian of Var(beta-hat) (Kuznetsova et al. 2017, JSS 82(13))."""
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
    """nu = 2 (L'VL)^2 / (g' Cov(tau) g), g_k = L' J_k L (Satterthwaite 1946; lmerTest contest1D)."""
    L = np.asarray(L, dtype=float)
    var = float(L @ vcov @ L)
    g = np.einsum("i,ijk,j->k", L, basis.jacobian, L)
    denom = float(g @ basis.vcov_varpar @ g)
    return 2 * var**2 / denom if denom > 0 else np.inf


def fai_cornelius_df(Lmat: np.ndarray, vcov: np.ndarray, basis: SatterthwaiteBasis) -> float:
    """Multi-df F denominator df (Fai & Cornelius 1996, J Stat Comput Simul 54:363; contestMD)."""
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
