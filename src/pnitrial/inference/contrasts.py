"""Tests and intervals for linear functions of the fixed effects, kept apart from fitting.

Methods: 'kenward-roger' (pbkrtest / emmeans default for lmer: adjusted covariance,
KR df), 'satterthwaite' (lmerTest: unadjusted covariance, Satterthwaite df) and
'asymptotic' (z-tests, labelled as such).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from pnitrial.inference.kenward_roger import (
    kenward_roger_batch,
    kenward_roger_df,
    kenward_roger_df_batch,
    kenward_roger_ftest,
    kr_vcov_adjusted,
    kr_vcov_adjusted_mmrm,
)
from pnitrial.inference.satterthwaite import (
    fai_cornelius_df,
    satterthwaite_basis,
    satterthwaite_basis_mmrm,
    satterthwaite_batch,
    satterthwaite_df,
    satterthwaite_df_batch,
)
from pnitrial.inference.wald import wald
from pnitrial.models.batch import BatchFit
from pnitrial.models.engine import LMMFit
from pnitrial.models.linalg import dot
from pnitrial.models.mmrm import MMRMFit

METHODS = ("kenward-roger", "satterthwaite", "asymptotic")


@dataclass(frozen=True)
class Estimate:
    estimate: float
    se: float
    df: float
    statistic: float
    statistic_type: str  # "t" or "z"
    p: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class FTest:
    ndf: int
    ddf: float
    F: float
    p: float
    statistic_type: str  # "F" or "chisq/df"


class Inference:
    """Binds a fit to one ddf method; computes the per-fit pieces once and serves every contrast.

    Parameters
    ----------
    fit : LMMFit
        A fit of the single-fit engine.
    method : {"kenward-roger", "satterthwaite", "asymptotic"}
        Kenward-Roger (pbkrtest, emmeans' default for lmer), Satterthwaite (lmerTest) or Wald z.
    alpha : float
        1 - the confidence level of the intervals.

    Examples
    --------
    >>> import numpy as np
    >>> from pnitrial.models.engine import ModelData, fit_lmm
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(20), 2); t = np.tile([0.0, 1.0], 20); arm = (g % 2).astype(float)
    >>> X = np.column_stack([np.ones(40), arm, t, arm * t])
    >>> y = X @ [1, 0.5, 0.2, 0.8] + rng.normal(size=20)[g] + rng.normal(size=40)
    >>> fit = fit_lmm(ModelData(X, np.ones((40, 1)), y, g, ("(Intercept)", "arm", "time", "arm:time")))
    >>> e = Inference(fit, "kenward-roger").estimate(np.array([0, 0, 0, 1.0]))
    >>> e.statistic_type, round(e.estimate, 4), round(e.se, 4), round(e.df, 2)
    ('t', -0.0073, 0.5038, 18.0)
    >>> Inference(fit, "asymptotic").estimate(np.array([0, 0, 0, 1.0])).statistic_type
    'z'
    """

    def __init__(self, fit: LMMFit | MMRMFit, method: str = "kenward-roger", alpha: float = 0.05):
        mmrm = isinstance(fit, MMRMFit)
        allowed = METHODS + (("kenward-roger-linear",) if mmrm else ())
        if method not in allowed:
            raise ValueError(f"unknown ddf method {method!r}; expected one of {allowed}")
        self.fit, self.method, self.alpha = fit, method, alpha
        self.warnings: list[str] = []
        if method.startswith("kenward-roger"):
            linear = method == "kenward-roger-linear"
            self._kr = kr_vcov_adjusted_mmrm(fit, linear) if mmrm else kr_vcov_adjusted(fit)
            self.vcov = self._kr.phi_adj
        else:
            self.vcov = fit.vcov
        if method == "satterthwaite":
            self._satt = satterthwaite_basis_mmrm(fit) if mmrm else satterthwaite_basis(fit)
            self.warnings += self._satt.warnings

    def df(self, L: np.ndarray) -> float:
        if self.method.startswith("kenward-roger"):
            return kenward_roger_df(L, self._kr)[0]
        if self.method == "satterthwaite":
            return satterthwaite_df(L, self.fit.vcov, self._satt)
        return np.inf

    def moments(self, L: np.ndarray) -> tuple[float, float, float]:
        """L'beta, its SE and its denominator df: what `estimate` tests (a panel tests many at once)."""
        L = np.asarray(L, dtype=float)
        return float(L @ self.fit.beta), float(np.sqrt(L @ self.vcov @ L)), self.df(L)

    def estimate(self, L: np.ndarray) -> Estimate:
        est, se, df = self.moments(L)
        w = wald(est, se, df, self.alpha)
        return Estimate(est, se, df, w.statistic, w.statistic_type, w.p, w.ci_low, w.ci_high)

    def ftest(self, Lmat: np.ndarray) -> FTest:
        """Wald F for L beta = 0 with the method's denominator df (lmerTest anova / KRmodcomp)."""
        Lmat = np.atleast_2d(np.asarray(Lmat, dtype=float))
        q = Lmat.shape[0]
        b = self.fit.beta
        if self.method.startswith("kenward-roger"):
            t = kenward_roger_ftest(Lmat, b, self._kr)
            return FTest(t.ndf, t.ddf, t.F, t.p, "F")
        lb = Lmat @ b
        F = float(lb @ np.linalg.solve(Lmat @ self.fit.vcov @ Lmat.T, lb)) / q
        if self.method == "satterthwaite":
            ddf = fai_cornelius_df(Lmat, self.fit.vcov, self._satt)
            return FTest(q, ddf, F, float(stats.f.sf(F, q, ddf)), "F")
        return FTest(q, np.inf, F, float(stats.chi2.sf(F * q, q)), "chisq/df")


# -- batched fits: one contrast for every outcome ---------------------------------------------


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


def batch_estimates(
    fit: BatchFit, L: np.ndarray, method: str = "kenward-roger", alpha: float = 0.05, basis=None
) -> BatchEstimates:
    """L'beta for every outcome of a batched fit, with the method's SE and df; z-tests are labelled z.

    Parameters
    ----------
    fit : BatchFit
        K random-intercept fits from models.batch.fit_batch.
    L : ndarray of shape (p,)
        The contrast, shared by the outcomes.
    method, alpha
        As for Inference.
    basis : optional
        The method's per-fit pieces (inference_basis), computed once when several contrasts are wanted.

    Examples
    --------
    >>> import numpy as np
    >>> from pnitrial.models.batch import fit_batch
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(20), 2); t = np.tile([0.0, 1.0], 20); arm = (g % 2).astype(float)
    >>> X = np.column_stack([np.ones(40), arm, t, arm * t])
    >>> Y = (X @ [1, 0.5, 0.2, 0.8])[:, None] + rng.normal(size=(20, 3))[g] + rng.normal(size=(40, 3))
    >>> e = batch_estimates(fit_batch(X, g, Y), np.array([0, 0, 0, 1.0]), "satterthwaite")
    >>> e.statistic_type, e.estimate.shape
    ('t', (3,))
    """
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
