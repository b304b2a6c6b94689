"""One outcome's trial analysis under three estimands.

- ``lmm``: arm x visit mixed model; behaves like a change-score analysis (no baseline adjustment).
- ``clda``: constrained longitudinal analysis; baseline in the response with a common mean.
- ``ancova``: each later visit regressed on baseline and arm, complete pairs.
cLDA and ANCOVA adjust for chance baseline imbalance and are the recommended primary analyses
of randomised pre-post trials (Vickers & Altman 2001; Twisk et al. 2018; Coffman et al. 2016).
Each model is fitted, then summarised; a failure is reported in its rows, never raised or dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pnitrial.analyses.mixed import enough_per_arm, fit_mixed, re_term
from pnitrial.analyses.rows import effect_columns, fit_header, mixed_fit_values, mmrm_fit_values, records
from pnitrial.data.codebook import Outcome
from pnitrial.data.trial import Trial
from pnitrial.failures import failure_status, fit_status, log
from pnitrial.inference.contrasts import Estimate, Inference
from pnitrial.inference.wald import wald
from pnitrial.models.censored import fit_censored
from pnitrial.models.design import (
    build_ancova,
    build_clda_model,
    build_trial_model,
    trial_contrasts,
    trial_rows,
)
from pnitrial.models.engine import LMMFit
from pnitrial.models.mmrm import MMRMFit
from pnitrial.models.ols import ancova_effect

ESTIMANDS = ("lmm", "clda", "ancova")
CENSORED = "clda_censored"  # the cLDA model with below-LOD values censored (lod.method: censored)
CENSORED_DDF = "asymptotic (censored ML)"
LMM_CONTRASTS = ("interaction", "within:intervention", "within:control", "between")


@dataclass
class AnalysisOptions:
    """How every outcome is analysed: ddf method, alpha, random slope, primary estimand, censored model."""

    ddf: str = "kenward-roger"
    alpha: float = 0.05
    random_slope: bool = False
    primary: str = "clda"
    censored: bool = False  # lod.method `censored`: add the censored cLDA, primary where values are censored
    covariance: str = "random-intercept"  # an mmrm structure, or auto (random-intercept for 2 visits, else us)
    covariance_fallback: tuple[str, ...] = ("toeph", "ar1h", "cs")  # tried in order when a structure fails
    reml: bool = True

    @classmethod
    def from_params(cls, params) -> AnalysisOptions:
        """The options of a workflow rule's params (ddf, alpha, random_slope, primary, lod_method, model.*)."""
        return cls(
            ddf=params.ddf,
            alpha=params.alpha,
            random_slope=params.random_slope,
            primary=params.primary,
            censored=getattr(params, "lod_method", "sqrt2") == "censored",
            covariance=getattr(params, "covariance", "random-intercept"),
            covariance_fallback=tuple(getattr(params, "covariance_fallback", ("toeph", "ar1h", "cs"))),
            reml=getattr(params, "reml", True),
        )

    def structure(self, n_visits: int) -> str:
        """The covariance model for an outcome observed at n_visits visits (a random slope keeps random effects)."""
        if self.random_slope or self.covariance == "random-intercept":
            return "random-intercept"
        if self.covariance == "auto":
            return "random-intercept" if n_visits <= 2 else "us"
        return self.covariance


@dataclass
class OutcomeResult:
    """One outcome's rows: fits, effects, estimated marginal means and the arm x visit F test."""

    fits: list[dict] = field(default_factory=list)
    effects: list[dict] = field(default_factory=list)
    emmeans: list[dict] = field(default_factory=list)
    anova: list[dict] = field(default_factory=list)


def _finite(x: float | None) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


class _Rows:
    """Binds one outcome's effect rows to its result; the rows come from analyses.rows."""

    def __init__(self, outcome: Outcome, opts: AnalysisOptions, result: OutcomeResult, primary: str):
        self.o, self.opts, self.result, self.primary = outcome, opts, result, primary

    def add(
        self, estimand: str, contrast: str, visit: str, e: Estimate | None, method: str, status: str, covariance=""
    ) -> None:
        o = self.o
        cols = effect_columns(
            o.key,
            o.family,
            o.is_log,
            estimand,
            contrast,
            visit,
            estimand == self.primary,
            method,
            status,
            e,
            covariance,
        )
        self.result.effects += records(cols)


def _emm_rows(
    o: Outcome, meta: Trial, estimand: str, primary: str, grid, estimate: Callable, status: str
) -> list[dict]:
    """The model's estimated marginal means by arm and visit, with the response-scale back-transform."""
    back = math.exp if o.is_log else (lambda x: x)
    out = []
    for (role, visit), L in grid.rows.items():
        e = estimate(L)
        out.append(
            {
                "outcome": o.key,
                "estimand": estimand,
                "primary": estimand == primary,
                "arm": meta.arms[role],
                "role": role,
                "visit": visit,
                "emmean": e.estimate,
                "se": e.se,
                "df": _finite(e.df),
                "ci_low": e.ci_low,
                "ci_high": e.ci_high,
                "response": back(e.estimate),
                "response_ci_low": back(e.ci_low),
                "response_ci_high": back(e.ci_high),
                "fit_status": status,
            }
        )
    return out


def _fit_summary(
    base: dict, fit: LMMFit | MMRMFit, inf: Inference, n_by_role: dict[str, int], covariance: str, notes: list[str]
) -> dict:
    warnings = "; ".join(fit.warnings + inf.warnings + notes)
    coefficients = {n: float(b) for n, b in zip(fit.data.fixed_names, fit.beta, strict=True)}
    if isinstance(fit, MMRMFit):
        return dict(base, **mmrm_fit_values(fit, n_by_role, warnings), coefficients=coefficients)
    row = dict(base, covariance=covariance, **mixed_fit_values(fit, n_by_role, warnings), coefficients=coefficients)
    if fit.data.q > 1:
        cov = fit.random_cov
        row.update(var_slope=float(cov[1, 1]), cov_intercept_slope=float(cov[0, 1]))
    return row


def _failed(base: dict, exc: Exception) -> dict:
    log.warning("%s %s: %s", base["outcome"], base["estimand"], failure_status(exc), exc_info=True)
    return dict(base, status="failed", converged=False, singular=None, error=failure_status(exc)[len("failed: ") :])


def _fit_header(o: Outcome, estimand: str, model: str, ddf: str, visit: str = "") -> dict:
    return fit_header(o.key, o.family, o.transform, estimand, model, ddf, visit)


def _cov_terms(meta: Trial) -> str:
    return "".join(f" + {c}" for c in meta.covariates)


def _lmm(frame: pd.DataFrame, meta: Trial, o: Outcome, opts: AnalysisOptions, res: OutcomeResult, rows: _Rows) -> None:
    covs = _cov_terms(meta)
    intended = opts.structure(len(meta.visits))
    base = _fit_header(o, "lmm", f"arm * visit{covs}{re_term(opts, intended)}", opts.ddf)
    try:
        tm = build_trial_model(frame, meta, o, random_slope=opts.random_slope)
        fit, inf, cov, notes = fit_mixed(tm, "the mixed model", opts)
    except Exception as exc:  # noqa: BLE001 - reported in the rows, traceback in the log
        res.fits.append(dict(_failed(base, exc), covariance=intended))
        for v in meta.visits[1:]:
            for c in LMM_CONTRASTS:
                rows.add("lmm", f"{c}:{v}", v, None, opts.ddf, "failed", intended)
        return
    base["model"] = f"arm * visit{covs}{re_term(opts, cov)}"
    summary = _fit_summary(base, fit, inf, tm.n_by_role, cov, notes)
    res.fits.append(summary)
    status = summary["status"]
    for contrast, visit, L in trial_contrasts(tm.grid):
        rows.add("lmm", contrast, visit, inf.estimate(L), opts.ddf, status, cov)
    res.emmeans += _emm_rows(o, meta, "lmm", rows.primary, tm.grid, inf.estimate, status)
    ft = inf.ftest(np.eye(tm.data.p)[list(tm.interaction_columns)])
    res.anova.append(
        {
            "outcome": o.key,
            "family": o.family,
            "term": "arm:visit",
            "ndf": ft.ndf,
            "ddf": _finite(ft.ddf),
            "F": ft.F,
            "p": ft.p,
            "statistic_type": ft.statistic_type,
            "ddf_method": opts.ddf,
            "fit_status": status,
        }
    )


def _clda(frame: pd.DataFrame, meta: Trial, o: Outcome, opts: AnalysisOptions, res: OutcomeResult, rows: _Rows) -> None:
    covs = _cov_terms(meta)
    intended = opts.structure(len(meta.visits))
    model = f"visit + arm:visit[after baseline]{covs}"
    base = _fit_header(o, "clda", model + re_term(opts, intended), opts.ddf)
    try:
        em = build_clda_model(frame, meta, o, random_slope=opts.random_slope)
        fit, inf, cov, notes = fit_mixed(em, "the cLDA model", opts)
    except Exception as exc:  # noqa: BLE001 - reported in the rows, traceback in the log
        res.fits.append(dict(_failed(base, exc), covariance=intended))
        for v in meta.visits[1:]:
            rows.add("clda", f"interaction:{v}", v, None, opts.ddf, "failed", intended)
        return
    base["model"] = model + re_term(opts, cov)
    summary = _fit_summary(base, fit, inf, em.n_by_role, cov, notes)
    res.fits.append(summary)
    for v, col in em.effects.items():
        e = inf.estimate(np.eye(em.data.p)[col])
        rows.add("clda", f"interaction:{v}", v, e, opts.ddf, summary["status"], cov)
    res.emmeans += _emm_rows(o, meta, "clda", rows.primary, em.grid, inf.estimate, summary["status"])


def _clda_censored(
    frame: pd.DataFrame, meta: Trial, o: Outcome, opts: AnalysisOptions, res: OutcomeResult, rows: _Rows
) -> None:
    """The cLDA model with values below the LOD as left-censored, by ML (censored.py); Wald z inference."""
    model = f"visit + arm:visit[after baseline]{_cov_terms(meta)} + (1 | participant), left-censored at the LOD"
    base = _fit_header(o, CENSORED, model, CENSORED_DDF)
    try:
        if opts.random_slope:
            raise ValueError("the censored model has a random intercept only (model.random_slope is set)")
        em = build_clda_model(frame, meta, o)
        enough_per_arm(em.n_by_role, "the censored model")
        rows_ = trial_rows(frame, o.key, meta.covariates)
        _some_detected(rows_, meta)
        cens = rows_["censored"].to_numpy().astype(bool)
        lod = rows_["lod"].to_numpy(dtype=float)
        limit = np.where(cens, lod, 1.0)
        limit = o.model_scale(limit)
        fit = fit_censored(em.data, cens, limit)
    except Exception as exc:  # noqa: BLE001 - reported in the rows, traceback in the log
        res.fits.append(_failed(base, exc))
        for v in meta.visits[1:]:
            rows.add(CENSORED, f"interaction:{v}", v, None, CENSORED_DDF, "failed", "random-intercept")
        return
    status = fit_status(fit.converged, fit.singular, fit.sigma**2, fit.sigma_u**2)
    res.fits.append(
        dict(
            base,
            covariance="random-intercept",
            status=status,
            n_participants=em.data.m,
            n_intervention=em.n_by_role["intervention"],
            n_control=em.n_by_role["control"],
            n_obs=em.data.n,
            var_participant=fit.sigma_u**2,
            var_residual=fit.sigma**2,
            converged=fit.converged,
            singular=fit.singular,
            gradient_max=fit.gradient_max,
            n_censored=fit.n_censored,
            ml_deviance=-2 * fit.loglik,
            warnings="; ".join(fit.warnings),
            error="",
            coefficients={n: float(b) for n, b in zip(em.data.fixed_names, fit.beta, strict=True)},
        )
    )

    def z_estimate(L: np.ndarray) -> Estimate:
        est, se = float(L @ fit.beta), math.sqrt(float(L @ fit.vcov @ L))
        w = wald(est, se, math.inf, opts.alpha)
        return Estimate(est, se, math.inf, w.statistic, w.statistic_type, w.p, w.ci_low, w.ci_high)

    for v, col in em.effects.items():
        e = z_estimate(np.eye(em.data.p)[col])
        rows.add(CENSORED, f"interaction:{v}", v, e, CENSORED_DDF, status, "random-intercept")
    res.emmeans += _emm_rows(o, meta, CENSORED, rows.primary, em.grid, z_estimate, status)


def _ancova(
    frame: pd.DataFrame, meta: Trial, o: Outcome, opts: AnalysisOptions, res: OutcomeResult, rows: _Rows
) -> None:
    covs = _cov_terms(meta)
    for v in meta.visits[1:]:
        base = _fit_header(o, "ancova", f"{v} ~ arm + baseline{covs} (OLS, complete pairs)", "ols", visit=v)
        try:
            d = build_ancova(frame, meta, o, v)
            enough_per_arm(d.n_by_role, f"complete pairs at {v}")
            e, fit = ancova_effect(d, opts.alpha)
        except Exception as exc:  # noqa: BLE001 - reported in the rows, traceback in the log
            res.fits.append(_failed(base, exc))
            rows.add("ancova", f"interaction:{v}", v, None, "ols", "failed")
            continue
        res.fits.append(
            dict(
                base,
                status="ok",
                n_participants=fit.n,
                n_intervention=d.n_by_role["intervention"],
                n_control=d.n_by_role["control"],
                n_obs=fit.n,
                var_residual=fit.sigma2,
                converged=True,
                singular=False,
                warnings="",
                error="",
                coefficients={n: float(b) for n, b in zip(d.names, fit.beta, strict=True)},
            )
        )
        rows.add("ancova", f"interaction:{v}", v, e, "ols", "ok")


def _some_detected(rows: pd.DataFrame, meta: Trial) -> None:
    """The censored likelihood has no maximum when every value of an arm at a visit is below the LOD."""
    trial = rows[rows["role"].isin(("intervention", "control"))]
    for (role, visit), cell in trial.groupby(["role", "visit"], sort=True):
        if len(cell) and cell["censored"].astype(bool).all():
            raise ValueError(
                f"every value of the {meta.arms[role]} arm at {visit} is below the LOD: "
                "the censored model has no finite estimate"
            )


def has_censored(frame: pd.DataFrame, key: str) -> bool:
    """Whether any trial-arm value of the outcome is below its limit of detection.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"outcome": ["il6", "il6"], "role": ["control", "healthy"], "censored": [0, 1]})
    >>> has_censored(frame, "il6")  # a healthy control's censored value does not count
    False
    """
    sel = (frame["outcome"] == key) & frame["role"].isin(("intervention", "control"))
    return bool(frame.loc[sel, "censored"].astype(bool).any())


def analyse_outcome(frame: pd.DataFrame, meta: Trial, key: str, opts: AnalysisOptions) -> OutcomeResult:
    """Every estimand for one outcome (LMM arm x visit, cLDA, ANCOVA, censored cLDA); failures are rows, never raised.

    Parameters
    ----------
    frame : DataFrame
        The long frame (one row per participant, visit and outcome) of data.longframe.
    meta : Trial
        The trial the frame describes.
    key : str
        The outcome's key.
    opts : AnalysisOptions
        ddf method, alpha, random slope, primary estimand, censored model.

    Returns
    -------
    OutcomeResult
        Fit rows, effect rows (model scale, and ratio scale for log outcomes), EMMs and the arm x visit F test.

    Examples
    --------
    >>> from pnitrial.data.examples import toy_trial
    >>> frame, trial = toy_trial()
    >>> pain = trial.outcomes[0]
    >>> res = analyse_outcome(frame, trial, "pain", AnalysisOptions())
    >>> [(r["estimand"], r["contrast"], round(r["estimate"], 2)) for r in res.effects if r["primary"]]
    [('clda', 'interaction:post', -0.72)]
    >>> [(f["estimand"], f["status"]) for f in res.fits]
    [('lmm', 'ok'), ('clda', 'ok'), ('ancova', 'ok')]
    """
    o = meta.outcome(key)
    res = OutcomeResult()
    censored = opts.censored and has_censored(frame, key)
    primary = CENSORED if censored and opts.primary == "clda" else opts.primary
    rows = _Rows(o, opts, res, primary)
    _lmm(frame, meta, o, opts, res, rows)
    _clda(frame, meta, o, opts, res, rows)
    if censored:
        _clda_censored(frame, meta, o, opts, res, rows)
    _ancova(frame, meta, o, opts, res, rows)
    return res
