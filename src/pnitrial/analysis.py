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
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .ancova import ancova_effect
from .design import build_ancova, build_clda_model, build_trial_model, trial_contrasts
from .engine import LMMFit
from .fallback import fit_with_fallback
from .inference import Estimate, Inference

ESTIMANDS = ("lmm", "clda", "ancova")
LMM_CONTRASTS = ("interaction", "within:intervention", "within:control", "between")


@dataclass
class AnalysisOptions:
    ddf: str = "kenward-roger"
    alpha: float = 0.05
    random_slope: bool = False
    primary: str = "clda"


@dataclass
class OutcomeResult:
    fits: list[dict] = field(default_factory=list)
    effects: list[dict] = field(default_factory=list)
    emmeans: list[dict] = field(default_factory=list)
    anova: list[dict] = field(default_factory=list)


def _status(converged: bool, singular: bool) -> str:
    if not converged:
        return "not converged"
    return "singular" if singular else "ok"


def _finite(x: float | None) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


class _Rows:
    """Builds the effect rows of one outcome, adding ratio rows for log outcomes."""

    def __init__(self, outcome: dict, opts: AnalysisOptions, result: OutcomeResult):
        self.o, self.opts, self.result = outcome, opts, result

    def add(self, estimand: str, contrast: str, visit: str, e: Estimate | None, method: str, status: str) -> None:
        vals = dict(e.__dict__) if e is not None else {}
        if "df" in vals:
            vals["df"] = _finite(vals["df"])
        base = {
            "outcome": self.o["key"],
            "family": self.o["family"],
            "estimand": estimand,
            "contrast": contrast,
            "visit": visit,
            "primary": estimand == self.opts.primary and contrast.startswith("interaction:"),
            "ddf_method": method,
            "fit_status": status,
        }
        cols = ("estimate", "se", "df", "statistic", "statistic_type", "p", "ci_low", "ci_high")
        self.result.effects.append({**base, "scale": "model", **{c: vals.get(c) for c in cols}})
        if self.o["transform"] == "log":
            ratio = {c: vals.get(c) for c in cols}
            if e is not None:
                ratio.update(
                    estimate=math.exp(e.estimate), se=None, ci_low=math.exp(e.ci_low), ci_high=math.exp(e.ci_high)
                )
            self.result.effects.append({**base, "scale": "ratio", **ratio})


def _fit_summary(base: dict, fit: LMMFit, inf: Inference, n_by_role: dict[str, int]) -> dict:
    cov = fit.random_cov
    row = dict(
        base,
        status=_status(fit.converged, fit.singular),
        n_participants=fit.data.m,
        n_intervention=n_by_role["intervention"],
        n_control=n_by_role["control"],
        n_obs=fit.data.n,
        var_participant=float(cov[0, 0]),
        var_residual=fit.sigma**2,
        reml_criterion=fit.criterion,
        converged=fit.converged,
        singular=fit.singular,
        gradient_max=fit.gradient_max,
        warnings="; ".join(fit.warnings + inf.warnings),
        error="",
        coefficients={n: float(b) for n, b in zip(fit.data.fixed_names, fit.beta, strict=True)},
    )
    if fit.data.q > 1:
        row.update(var_slope=float(cov[1, 1]), cov_intercept_slope=float(cov[0, 1]))
    return row


def _failed(base: dict, exc: Exception) -> dict:
    return dict(base, status="failed", converged=False, singular=None, error=str(exc))


def _fit_header(o: dict, estimand: str, model: str, ddf: str, visit: str = "") -> dict:
    return {
        "outcome": o["key"],
        "family": o["family"],
        "transform": o["transform"],
        "estimand": estimand,
        "visit": visit,
        "model": model,
        "ddf_method": ddf,
    }


def _cov_terms(meta: dict) -> str:
    return "".join(f" + {c}" for c in meta["covariates"])


def _re_term(opts: AnalysisOptions) -> str:
    return " + (1 + time | participant)" if opts.random_slope else " + (1 | participant)"


def _lmm(frame: pd.DataFrame, meta: dict, o: dict, opts: AnalysisOptions, res: OutcomeResult, rows: _Rows) -> None:
    covs = _cov_terms(meta)
    base = _fit_header(o, "lmm", f"arm * visit{covs}{_re_term(opts)}", opts.ddf)
    try:
        tm = build_trial_model(frame, meta, o, random_slope=opts.random_slope)
        fit = fit_with_fallback(tm.data)
        inf = Inference(fit, opts.ddf, opts.alpha)
    except (ValueError, np.linalg.LinAlgError) as exc:
        res.fits.append(_failed(base, exc))
        for v in meta["visits"][1:]:
            for c in LMM_CONTRASTS:
                rows.add("lmm", f"{c}:{v}", v, None, opts.ddf, "failed")
        return
    summary = _fit_summary(base, fit, inf, tm.n_by_role)
    res.fits.append(summary)
    status = summary["status"]
    for contrast, visit, L in trial_contrasts(tm.grid):
        rows.add("lmm", contrast, visit, inf.estimate(L), opts.ddf, status)
    labels = {"intervention": meta["arms"]["intervention"], "control": meta["arms"]["control"]}
    back = math.exp if o["transform"] == "log" else (lambda x: x)
    for (role, visit), L in tm.grid.rows.items():
        e = inf.estimate(L)
        res.emmeans.append(
            {
                "outcome": o["key"],
                "arm": labels[role],
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
    ft = inf.ftest(np.eye(tm.data.p)[list(tm.interaction_columns)])
    res.anova.append(
        {
            "outcome": o["key"],
            "family": o["family"],
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


def _clda(frame: pd.DataFrame, meta: dict, o: dict, opts: AnalysisOptions, res: OutcomeResult, rows: _Rows) -> None:
    covs = _cov_terms(meta)
    base = _fit_header(o, "clda", f"visit + arm:visit[after baseline]{covs}{_re_term(opts)}", opts.ddf)
    try:
        em = build_clda_model(frame, meta, o, random_slope=opts.random_slope)
        fit = fit_with_fallback(em.data)
        inf = Inference(fit, opts.ddf, opts.alpha)
    except (ValueError, np.linalg.LinAlgError) as exc:
        res.fits.append(_failed(base, exc))
        for v in meta["visits"][1:]:
            rows.add("clda", f"interaction:{v}", v, None, opts.ddf, "failed")
        return
    summary = _fit_summary(base, fit, inf, em.n_by_role)
    res.fits.append(summary)
    for v, col in em.effects.items():
        rows.add("clda", f"interaction:{v}", v, inf.estimate(np.eye(em.data.p)[col]), opts.ddf, summary["status"])


def _ancova(frame: pd.DataFrame, meta: dict, o: dict, opts: AnalysisOptions, res: OutcomeResult, rows: _Rows) -> None:
    covs = _cov_terms(meta)
    for v in meta["visits"][1:]:
        base = _fit_header(o, "ancova", f"{v} ~ arm + baseline{covs} (OLS, complete pairs)", "ols", visit=v)
        try:
            d = build_ancova(frame, meta, o, v)
            e, fit = ancova_effect(d, opts.alpha)
        except (ValueError, np.linalg.LinAlgError) as exc:
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


def analyse_outcome(frame: pd.DataFrame, meta: dict, key: str, opts: AnalysisOptions) -> OutcomeResult:
    """Every estimand for one outcome; failures are returned in the rows, never raised."""
    o = next(x for x in meta["outcomes"] if x["key"] == key)
    res = OutcomeResult()
    rows = _Rows(o, opts, res)
    _lmm(frame, meta, o, opts, res, rows)
    _clda(frame, meta, o, opts, res, rows)
    _ancova(frame, meta, o, opts, res, rows)
    return res
