"""Model diagnostics of the primary mixed model: conditional residuals, random effects, influence.

Influence is measured per participant by deleting the participant and refitting (exact case
deletion, as influence.ME's `cooks.distance` on `influence(model, group = )`), so the table can
flag participants whose removal moves the fixed effects, without naming them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from pnitrial.data.codebook import Outcome
from pnitrial.data.trial import Trial
from pnitrial.models.design import build_clda_model, build_trial_model, trial_rows
from pnitrial.models.engine import LMMFit, ModelData, fit_lmm, theta_to_lambda
from pnitrial.report.precision import round_array

COLUMNS = [
    "outcome",
    "estimand",
    "rank",
    "arm",
    "n_observations",
    "cooks_distance",
    "threshold",
    "influential",
    "interaction_change",
    "fit_status",
]


@dataclass(frozen=True)
class Diagnostics:
    fitted: np.ndarray
    residuals: np.ndarray
    random_effects: np.ndarray  # (m, q)
    cooks: np.ndarray  # (m,)
    interaction_change: np.ndarray  # (m,) change of the (first) intervention effect on deleting the participant
    status: list[str]


def random_effects(fit: LMMFit) -> np.ndarray:
    """Conditional modes b_i = L (L'Z_i'Z_i L + I)^-1 L'Z_i'(y_i - X_i b), L = Lambda (Bates et al. 2015, JSS 67:1)."""
    d = fit.data
    lam = theta_to_lambda(fit.theta, d.q)
    r = d.y - d.X @ fit.beta
    out = np.zeros((int(d.group.max()) + 1, d.q))
    for g in range(out.shape[0]):
        rows = d.group == g
        zl = d.Z[rows] @ lam
        out[g] = lam @ np.linalg.solve(zl.T @ zl + np.eye(d.q), zl.T @ r[rows])
    return out


def conditional_residuals(fit: LMMFit, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fitted values X beta + Z b and residuals y - fitted, as lme4's fitted() and residuals()."""
    d = fit.data
    fitted = d.X @ fit.beta + np.einsum("ij,ij->i", d.Z, b[d.group])
    return fitted, d.y - fitted


def without_participant(d: ModelData, g: int) -> ModelData:
    keep = d.group != g
    group = d.group[keep]
    return replace(d, X=d.X[keep], Z=d.Z[keep], y=d.y[keep], group=np.where(group > g, group - 1, group))


def cooks_distance(fit: LMMFit, column: int | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Participant-level Cook's distance (beta - beta_(i))' V^-1 (beta - beta_(i)) / p, V the full fit's vcov.

    Cook 1977 (Technometrics 19:15) applied to deleted clusters, as influence.ME (Nieuwenhuis et al.
    2012, R Journal 4:38). Also returns the change of coefficient `column` and each refit's status.
    """
    d = fit.data
    m = int(d.group.max()) + 1
    vinv = np.linalg.inv(fit.vcov)
    cooks, change, status = np.full(m, np.nan), np.full(m, np.nan), []
    for g in range(m):
        try:
            sub = fit_lmm(without_participant(d, g), reml=fit.reml)
        except (ValueError, np.linalg.LinAlgError) as exc:
            status.append(f"failed: {exc}")
            continue
        delta = fit.beta - sub.beta
        cooks[g] = float(delta @ vinv @ delta) / d.p
        if column is not None:
            change[g] = -delta[column]
        status.append("ok" if sub.converged else "not converged")
    return cooks, change, status


def primary_model(frame: pd.DataFrame, meta: Trial, outcome: Outcome, estimand: str, random_slope: bool = False):
    """The design of the primary mixed model (cLDA for clda and ancova primaries, else the arm x visit LMM)."""
    if estimand == "lmm":
        return "lmm", build_trial_model(frame, meta, outcome, random_slope)
    return "clda", build_clda_model(frame, meta, outcome, random_slope)


def participant_roles(frame: pd.DataFrame, meta: Trial, key: str) -> np.ndarray:
    """Arm of each participant in the order of the design's participant codes (sorted pid)."""
    sub = trial_rows(frame, key, meta.covariates)
    return sub.drop_duplicates("pid")["role"].to_numpy()


def outcome_diagnostics(
    frame: pd.DataFrame, meta: Trial, key: str, estimand: str, random_slope: bool = False
) -> tuple[pd.DataFrame, dict | None]:
    """Influence table of one outcome and the arrays its figure needs (None when the fit failed)."""
    outcome = meta.outcome(key)
    try:
        estimand, model = primary_model(frame, meta, outcome, estimand, random_slope)
        fit = fit_lmm(model.data)
    except (ValueError, np.linalg.LinAlgError) as exc:
        row = {"outcome": key, "estimand": estimand, "fit_status": f"failed: {exc}"}
        return pd.DataFrame([row], columns=COLUMNS), None
    column = next(iter(model.effects.values())) if hasattr(model, "effects") else model.interaction_columns[0]
    diag = diagnose(fit, column)
    arms = participant_roles(frame, meta, key)
    n_obs = np.bincount(fit.data.group)
    table = influence_table(key, estimand, diag, arms, n_obs)
    if not fit.converged:
        table["fit_status"] = "full fit not converged; " + table["fit_status"]
    figure = {
        "fitted": diag.fitted,
        "residuals": diag.residuals,
        "random_effects": diag.random_effects,
        "cooks": diag.cooks,
        "arms": arms,
        "threshold": 4.0 / len(arms),
    }
    return table, figure


def diagnose(fit: LMMFit, column: int | None) -> Diagnostics:
    b = random_effects(fit)
    fitted, resid = conditional_residuals(fit, b)
    cooks, change, status = cooks_distance(fit, column)
    return Diagnostics(fitted, resid, b, cooks, change, status)


def influence_table(key: str, estimand: str, diag: Diagnostics, arms: np.ndarray, n_obs: np.ndarray) -> pd.DataFrame:
    """Participants ranked by Cook's distance (rank 1 = most influential); no identifiers."""
    m = len(diag.cooks)
    # ranked by the distances as written (rounded), ties in participant order, so no noise reorders them
    order = np.lexsort((np.arange(m), -np.nan_to_num(round_array(diag.cooks), nan=-np.inf)))
    threshold = 4.0 / m
    rows = [
        {
            "outcome": key,
            "estimand": estimand,
            "rank": k + 1,
            "arm": arms[g],
            "n_observations": int(n_obs[g]),
            "cooks_distance": diag.cooks[g],
            "threshold": threshold,
            "influential": bool(diag.cooks[g] > threshold),
            "interaction_change": diag.interaction_change[g],
            "fit_status": diag.status[g],
        }
        for k, g in enumerate(order)
    ]
    return pd.DataFrame(rows, columns=COLUMNS)
