"""One outcome's trial analysis: fit, then EMMs, contrasts and the arm x visit F test."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .design import build_trial_model, trial_contrasts
from .engine import fit_lmm
from .inference import Inference


@dataclass
class AnalysisOptions:
    ddf: str = "kenward-roger"
    alpha: float = 0.05
    random_slope: bool = False


@dataclass
class OutcomeResult:
    fit: dict
    effects: list[dict] = field(default_factory=list)
    emmeans: list[dict] = field(default_factory=list)
    anova: list[dict] = field(default_factory=list)


def _status(converged: bool, singular: bool) -> str:
    if not converged:
        return "not converged"
    return "singular" if singular else "ok"


def _effect_row(outcome: dict, contrast: str, visit: str, est, scale: str, status: str, method: str) -> dict:
    return {
        "outcome": outcome["key"],
        "family": outcome["family"],
        "estimand": "lmm",
        "contrast": contrast,
        "visit": visit,
        "scale": scale,
        "estimate": est.get("estimate"),
        "se": est.get("se"),
        "df": est.get("df"),
        "statistic": est.get("statistic"),
        "statistic_type": est.get("statistic_type"),
        "p": est.get("p"),
        "ci_low": est.get("ci_low"),
        "ci_high": est.get("ci_high"),
        "ddf_method": method,
        "fit_status": status,
    }


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def analyse_outcome(frame: pd.DataFrame, meta: dict, key: str, opts: AnalysisOptions) -> OutcomeResult:
    """Fit the LMM for one outcome and summarise it; a failure is returned, never raised."""
    outcome = next(o for o in meta["outcomes"] if o["key"] == key)
    fit_row = {
        "outcome": key,
        "family": outcome["family"],
        "transform": outcome["transform"],
        "model": "arm * visit"
        + "".join(f" + {c}" for c in meta["covariates"])
        + (" + (1 + time | participant)" if opts.random_slope else " + (1 | participant)"),
        "ddf_method": opts.ddf,
    }
    try:
        tm = build_trial_model(frame, meta, outcome, random_slope=opts.random_slope)
        fit = fit_lmm(tm.data, reml=True)
        inf = Inference(fit, opts.ddf, opts.alpha)
    except (ValueError, np.linalg.LinAlgError) as exc:
        fit_row.update(status="failed", converged=False, singular=None, error=str(exc))
        failed = [
            _effect_row(outcome, f"{c}:{v}", v, {}, "model", "failed", opts.ddf)
            for v in meta["visits"][1:]
            for c in ("interaction", "within:intervention", "within:control", "between")
        ]
        return OutcomeResult(fit=fit_row, effects=failed)

    d = tm.data
    status = _status(fit.converged, fit.singular)
    cov = fit.random_cov
    fit_row.update(
        status=status,
        n_participants=d.m,
        n_intervention=tm.n_by_role["intervention"],
        n_control=tm.n_by_role["control"],
        n_obs=d.n,
        var_participant=float(cov[0, 0]),
        var_residual=fit.sigma**2,
        reml_criterion=fit.criterion,
        converged=fit.converged,
        singular=fit.singular,
        gradient_max=fit.gradient_max,
        warnings="; ".join(fit.warnings + inf.warnings),
        error="",
    )
    if d.q > 1:
        fit_row.update(var_slope=float(cov[1, 1]), cov_intercept_slope=float(cov[0, 1]))
    fit_row["coefficients"] = {n: float(b) for n, b in zip(d.fixed_names, fit.beta, strict=True)}

    result = OutcomeResult(fit=fit_row)
    is_log = outcome["transform"] == "log"
    for contrast, visit, L in trial_contrasts(tm.grid):
        e = inf.estimate(L).__dict__
        e["df"] = _finite(e["df"])
        result.effects.append(_effect_row(outcome, contrast, visit, e, "model", status, opts.ddf))
        if is_log:
            ratio = dict(
                e,
                estimate=math.exp(e["estimate"]),
                se=None,
                ci_low=math.exp(e["ci_low"]),
                ci_high=math.exp(e["ci_high"]),
            )
            result.effects.append(_effect_row(outcome, contrast, visit, ratio, "ratio", status, opts.ddf))

    arm_label = {"intervention": meta["arms"]["intervention"], "control": meta["arms"]["control"]}
    for (role, visit), L in tm.grid.rows.items():
        e = inf.estimate(L)
        row = {
            "outcome": key,
            "arm": arm_label[role],
            "role": role,
            "visit": visit,
            "emmean": e.estimate,
            "se": e.se,
            "df": _finite(e.df),
            "ci_low": e.ci_low,
            "ci_high": e.ci_high,
            "response": math.exp(e.estimate) if is_log else e.estimate,
            "response_ci_low": math.exp(e.ci_low) if is_log else e.ci_low,
            "response_ci_high": math.exp(e.ci_high) if is_log else e.ci_high,
            "fit_status": status,
        }
        result.emmeans.append(row)

    Lmat = np.eye(d.p)[list(tm.interaction_columns)]
    ft = inf.ftest(Lmat)
    result.anova.append(
        {
            "outcome": key,
            "family": outcome["family"],
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
    return result
