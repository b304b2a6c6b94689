"""Model diagnostics of the primary mixed model: conditional residuals, random effects, influence.

Influence is measured per participant by deleting the participant and refitting (exact case
deletion, as influence.ME's `cooks.distance` on `influence(model, group = )`), so the table can
flag participants whose removal moves the fixed effects, without naming them. Under a random
intercept all deletions are fitted as one batch (models.batch.fit_deletions).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from pnitrial.data.codebook import Outcome
from pnitrial.data.trial import Trial
from pnitrial.models.batch import fit_deletions
from pnitrial.models.design import build_clda_model, build_trial_model, trial_rows
from pnitrial.models.engine import LMMFit, ModelData, fit_lmm, theta_to_lambda
from pnitrial.models.linalg import dot, mm
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
    """Residuals, random effects and participant influence of one fitted mixed model.

    Parameters
    ----------
    fitted, residuals : ndarray, shape (n,)
        Conditional fitted values X beta + Z b and residuals.
    random_effects : ndarray, shape (m, q)
        Conditional modes of the random effects.
    cooks : ndarray, shape (m,)
        Participant-level Cook's distance (NaN where the refit failed).
    interaction_change : ndarray, shape (m,)
        Change of the (first) intervention effect on deleting the participant.
    status : list of str
        Status of each deletion refit.

    Examples
    --------
    >>> from pnitrial.models.engine import ModelData, fit_lmm
    >>> g = np.repeat(np.arange(6), 2); post = np.tile([0.0, 1.0], 6); arm = (g < 3).astype(float)
    >>> y = np.array([6.0, 3.5, 5.0, 3.0, 7.0, 4.5, 6.0, 5.5, 5.5, 5.0, 6.5, 6.5])
    >>> X = np.column_stack([np.ones(12), post, arm * post])
    >>> fit = fit_lmm(ModelData(X, np.ones((12, 1)), y, g, ("(Intercept)", "visitpost", "armMBPM:visitpost")))
    >>> diag = diagnose(fit, 2)
    >>> diag.random_effects.shape, diag.cooks.shape, diag.status[0]
    ((6, 1), (6,), 'ok')
    """

    fitted: np.ndarray
    residuals: np.ndarray
    random_effects: np.ndarray  # (m, q)
    cooks: np.ndarray  # (m,)
    interaction_change: np.ndarray  # (m,) change of the (first) intervention effect on deleting the participant
    status: list[str]


def random_effects(fit: LMMFit) -> np.ndarray:
    """Conditional modes b_i = L (L'Z_i'Z_i L + I)^-1 L'Z_i'(y_i - X_i b), L = Lambda (Bates et al. 2015, JSS 67:1).

    Parameters
    ----------
    fit : LMMFit
        A fitted mixed model.

    Returns
    -------
    ndarray, shape (m, q)
        One row per participant, as lme4's ranef().

    Examples
    --------
    >>> from pnitrial.models.engine import ModelData, fit_lmm
    >>> g = np.repeat(np.arange(6), 2); post = np.tile([0.0, 1.0], 6); arm = (g < 3).astype(float)
    >>> y = np.array([6.0, 3.5, 5.0, 3.0, 7.0, 4.5, 6.0, 5.5, 5.5, 5.0, 6.5, 6.5])
    >>> X = np.column_stack([np.ones(12), post, arm * post])
    >>> fit = fit_lmm(ModelData(X, np.ones((12, 1)), y, g, ("(Intercept)", "visitpost", "armMBPM:visitpost")))
    >>> random_effects(fit).round(2).ravel().tolist()
    [-0.08, -0.8, 0.88, -0.08, -0.56, 0.64]
    """
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
    """Fitted values X beta + Z b and residuals y - fitted, as lme4's fitted() and residuals().

    Parameters
    ----------
    fit : LMMFit
        A fitted mixed model.
    b : ndarray, shape (m, q)
        Its random effects, from `random_effects`.

    Returns
    -------
    fitted, residuals : ndarray, shape (n,)

    Examples
    --------
    >>> from pnitrial.models.engine import ModelData, fit_lmm
    >>> g = np.repeat(np.arange(6), 2); post = np.tile([0.0, 1.0], 6); arm = (g < 3).astype(float)
    >>> y = np.array([6.0, 3.5, 5.0, 3.0, 7.0, 4.5, 6.0, 5.5, 5.5, 5.0, 6.5, 6.5])
    >>> X = np.column_stack([np.ones(12), post, arm * post])
    >>> fit = fit_lmm(ModelData(X, np.ones((12, 1)), y, g, ("(Intercept)", "visitpost", "armMBPM:visitpost")))
    >>> fitted, resid = conditional_residuals(fit, random_effects(fit))
    >>> fitted[:2].round(3).tolist(), resid[:2].round(3).tolist()
    ([5.92, 3.587], [0.08, -0.087])
    """
    d = fit.data
    fitted = d.X @ fit.beta + np.einsum("ij,ij->i", d.Z, b[d.group])
    return fitted, d.y - fitted


def without_participant(d: ModelData, g: int) -> ModelData:
    """The model's data without participant code `g`; later codes move down by one.

    Parameters
    ----------
    d : ModelData
        The full data.
    g : int
        Participant code to delete.

    Returns
    -------
    ModelData
        The data of the other participants, codes 0..m-2.

    Examples
    --------
    >>> from pnitrial.models.engine import ModelData, fit_lmm
    >>> g = np.repeat(np.arange(6), 2); post = np.tile([0.0, 1.0], 6); arm = (g < 3).astype(float)
    >>> y = np.array([6.0, 3.5, 5.0, 3.0, 7.0, 4.5, 6.0, 5.5, 5.5, 5.0, 6.5, 6.5])
    >>> X = np.column_stack([np.ones(12), post, arm * post])
    >>> fit = fit_lmm(ModelData(X, np.ones((12, 1)), y, g, ("(Intercept)", "visitpost", "armMBPM:visitpost")))
    >>> d = without_participant(fit.data, 2)
    >>> d.n, d.m, d.group.tolist()
    (10, 5, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    """
    keep = d.group != g
    group = d.group[keep]
    return replace(d, X=d.X[keep], Z=d.Z[keep], y=d.y[keep], group=np.where(group > g, group - 1, group))


def cooks_distance(fit: LMMFit, column: int | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Participant-level Cook's distance (beta - beta_(i))' V^-1 (beta - beta_(i)) / p, V the full fit's vcov.

    Cook 1977 (Technometrics 19:15) applied to deleted clusters, as influence.ME (Nieuwenhuis et al.
    2012, R Journal 4:38). Also returns the change of coefficient `column` and each refit's status.

    Parameters
    ----------
    fit : LMMFit
        The full fit; every participant is deleted in turn and the model refitted.
    column : int, optional
        A coefficient whose change (beta_(i) - beta) to report.

    Returns
    -------
    cooks : ndarray, shape (m,)
        Cook's distance per participant (NaN where the refit failed).
    change : ndarray, shape (m,)
        Change of coefficient `column` (NaN without `column`).
    status : list of str
        "ok", "not converged" or "failed: ..." per refit.

    Examples
    --------
    >>> from pnitrial.models.engine import ModelData, fit_lmm
    >>> g = np.repeat(np.arange(6), 2); post = np.tile([0.0, 1.0], 6); arm = (g < 3).astype(float)
    >>> y = np.array([6.0, 3.5, 5.0, 3.0, 7.0, 4.5, 6.0, 5.5, 5.5, 5.0, 6.5, 6.5])
    >>> X = np.column_stack([np.ones(12), post, arm * post])
    >>> fit = fit_lmm(ModelData(X, np.ones((12, 1)), y, g, ("(Intercept)", "visitpost", "armMBPM:visitpost")))
    >>> cooks, change, status = cooks_distance(fit, column=2)
    >>> cooks.round(3).tolist()
    [0.088, 0.376, 0.173, 0.088, 0.183, 0.47]
    >>> change.round(3).tolist(), set(status)
    ([0.083, -0.133, 0.017, -0.083, -0.107, 0.182], {'ok'})
    """
    d = fit.data
    m = int(d.group.max()) + 1
    vinv = np.linalg.inv(fit.vcov)
    cooks, change, status = np.full(m, np.nan), np.full(m, np.nan), []
    if d.q == 1 and np.all(d.Z == 1.0):  # a random intercept: all deletions in one batch
        subs = fit_deletions(d.X, d.group, d.y, reml=fit.reml)
        delta = fit.beta[None, :] - subs.beta
        cooks = dot(mm(delta[:, None, :], vinv[None])[:, 0, :], delta) / d.p
        if column is not None:
            change = -delta[:, column]
        status = [
            f"failed: {e}" if e else ("ok" if c else "not converged")
            for e, c in zip(subs.error, subs.converged, strict=True)
        ]
        return cooks, change, status
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
    """The design of the primary mixed model (cLDA for clda and ancova primaries, else the arm x visit LMM).

    Parameters
    ----------
    frame : DataFrame
        The long frame.
    meta : Trial
        The trial.
    outcome : Outcome
        The outcome.
    estimand : str
        The primary estimand; "lmm" gives the arm x visit model, anything else cLDA.
    random_slope : bool
        Add a random slope in time.

    Returns
    -------
    estimand : str
        "lmm" or "clda".
    model : TrialModel or EffectModel
        The design.

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> from pnitrial.data.trial import Trial
    >>> pain = Outcome("pain", "pain", "Pain", "points", "clinical", "none")
    >>> meta = Trial("demo", {"intervention": "MBPM", "control": "WL", "healthy": None}, ("pre", "post"),
    ...              outcomes=(pain,))
    >>> pid = np.repeat(np.arange(1, 7), 2)
    >>> frame = pd.DataFrame({"pid": pid, "role": np.where(pid <= 3, "intervention", "control"),
    ...     "visit": np.tile(["pre", "post"], 6), "visit_index": np.tile([0, 1], 6), "outcome": "pain",
    ...     "value": [6.0, 3.5, 5.0, 3.0, 7.0, 4.5, 6.0, 5.5, 5.5, 5.0, 6.5, 6.5], "censored": 0, "lod": np.nan})
    >>> estimand, model = primary_model(frame, meta, pain, "ancova")
    >>> estimand, model.data.fixed_names
    ('clda', ('(Intercept)', 'visitpost', 'armMBPM:visitpost'))
    """
    if estimand == "lmm":
        return "lmm", build_trial_model(frame, meta, outcome, random_slope)
    return "clda", build_clda_model(frame, meta, outcome, random_slope)


def participant_roles(frame: pd.DataFrame, meta: Trial, key: str) -> np.ndarray:
    """Arm of each participant in the order of the design's participant codes (sorted pid).

    Parameters
    ----------
    frame : DataFrame
        The long frame.
    meta : Trial
        The trial (its covariates decide which rows are used).
    key : str
        Outcome key.

    Returns
    -------
    ndarray of str
        "intervention" or "control" per participant.

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> from pnitrial.data.trial import Trial
    >>> pain = Outcome("pain", "pain", "Pain", "points", "clinical", "none")
    >>> meta = Trial("demo", {"intervention": "MBPM", "control": "WL", "healthy": None}, ("pre", "post"),
    ...              outcomes=(pain,))
    >>> pid = np.repeat(np.arange(1, 7), 2)
    >>> frame = pd.DataFrame({"pid": pid, "role": np.where(pid <= 3, "intervention", "control"),
    ...     "visit": np.tile(["pre", "post"], 6), "visit_index": np.tile([0, 1], 6), "outcome": "pain",
    ...     "value": [6.0, 3.5, 5.0, 3.0, 7.0, 4.5, 6.0, 5.5, 5.5, 5.0, 6.5, 6.5], "censored": 0, "lod": np.nan})
    >>> participant_roles(frame, meta, "pain").tolist()
    ['intervention', 'intervention', 'intervention', 'control', 'control', 'control']
    """
    sub = trial_rows(frame, key, meta.covariates)
    return sub.drop_duplicates("pid")["role"].to_numpy()


def outcome_diagnostics(
    frame: pd.DataFrame, meta: Trial, key: str, estimand: str, random_slope: bool = False
) -> tuple[pd.DataFrame, dict | None]:
    """Influence table of one outcome and the arrays its figure needs (None when the fit failed).

    Parameters
    ----------
    frame : DataFrame
        The long frame.
    meta : Trial
        The trial.
    key : str
        Outcome key.
    estimand : str
        The primary estimand (see `primary_model`).
    random_slope : bool
        Add a random slope in time.

    Returns
    -------
    table : DataFrame
        `influence_table`'s rows, or one failure row.
    figure : dict or None
        Fitted values, residuals, random effects, Cook's distances, arms and the 4/m threshold.

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> from pnitrial.data.trial import Trial
    >>> pain = Outcome("pain", "pain", "Pain", "points", "clinical", "none")
    >>> meta = Trial("demo", {"intervention": "MBPM", "control": "WL", "healthy": None}, ("pre", "post"),
    ...              outcomes=(pain,))
    >>> pid = np.repeat(np.arange(1, 7), 2)
    >>> frame = pd.DataFrame({"pid": pid, "role": np.where(pid <= 3, "intervention", "control"),
    ...     "visit": np.tile(["pre", "post"], 6), "visit_index": np.tile([0, 1], 6), "outcome": "pain",
    ...     "value": [6.0, 3.5, 5.0, 3.0, 7.0, 4.5, 6.0, 5.5, 5.5, 5.0, 6.5, 6.5], "censored": 0, "lod": np.nan})
    >>> table, figure = outcome_diagnostics(frame, meta, "pain", "clda")
    >>> table["arm"].tolist()[:2], bool(table["influential"].any()), round(figure["threshold"], 4)
    (['control', 'intervention'], False, 0.6667)
    """
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
    """Random effects, conditional residuals and participant influence of a fit.

    Parameters
    ----------
    fit : LMMFit
        A fitted mixed model.
    column : int or None
        The coefficient whose change on deletion is reported.

    Returns
    -------
    Diagnostics

    Examples
    --------
    >>> from pnitrial.models.engine import ModelData, fit_lmm
    >>> g = np.repeat(np.arange(6), 2); post = np.tile([0.0, 1.0], 6); arm = (g < 3).astype(float)
    >>> y = np.array([6.0, 3.5, 5.0, 3.0, 7.0, 4.5, 6.0, 5.5, 5.5, 5.0, 6.5, 6.5])
    >>> X = np.column_stack([np.ones(12), post, arm * post])
    >>> fit = fit_lmm(ModelData(X, np.ones((12, 1)), y, g, ("(Intercept)", "visitpost", "armMBPM:visitpost")))
    >>> diag = diagnose(fit, 2)
    >>> bool(abs(diag.residuals.sum()) < 1e-9), int(np.argmax(diag.cooks))
    (True, 5)
    """
    b = random_effects(fit)
    fitted, resid = conditional_residuals(fit, b)
    cooks, change, status = cooks_distance(fit, column)
    return Diagnostics(fitted, resid, b, cooks, change, status)


def influence_table(key: str, estimand: str, diag: Diagnostics, arms: np.ndarray, n_obs: np.ndarray) -> pd.DataFrame:
    """Participants ranked by Cook's distance (rank 1 = most influential); no identifiers.

    A participant is flagged influential when the distance exceeds 4 / m (m participants).

    Parameters
    ----------
    key, estimand : str
        Outcome key and estimand, copied into every row.
    diag : Diagnostics
        The fit's diagnostics.
    arms : ndarray
        Arm of each participant, in participant-code order.
    n_obs : ndarray of int
        Observations per participant.

    Returns
    -------
    DataFrame
        One row per participant with the columns `COLUMNS`.

    Examples
    --------
    >>> from pnitrial.models.engine import ModelData, fit_lmm
    >>> g = np.repeat(np.arange(6), 2); post = np.tile([0.0, 1.0], 6); arm = (g < 3).astype(float)
    >>> y = np.array([6.0, 3.5, 5.0, 3.0, 7.0, 4.5, 6.0, 5.5, 5.5, 5.0, 6.5, 6.5])
    >>> X = np.column_stack([np.ones(12), post, arm * post])
    >>> fit = fit_lmm(ModelData(X, np.ones((12, 1)), y, g, ("(Intercept)", "visitpost", "armMBPM:visitpost")))
    >>> arms = np.array(["intervention"] * 3 + ["control"] * 3, dtype=object)
    >>> table = influence_table("pain", "clda", diagnose(fit, 2), arms, np.bincount(g))
    >>> table["arm"].tolist()[:2], table["cooks_distance"].round(3).tolist()[:2], table["influential"].tolist()[0]
    (['control', 'intervention'], [0.47, 0.376], False)
    """
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
