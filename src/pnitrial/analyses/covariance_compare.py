"""Fit statistics of the mixed models under several covariance structures, beside the primary analysis.

`model.covariance_compare` lists MMRM structures; for every outcome and for the arm x visit (`lmm`) and
cLDA models, each structure is fitted with the same fixed effects and the same (RE)ML criterion as the
primary analysis, and its logLik, AIC and BIC (mmrm's: 2 and log(participants) per covariance
parameter) are tabulated with their distance from the best structure. With REML the criteria compare
covariance structures only, which is what they are for here (Wolfinger 1993, Commun Stat Simul Comput
22:1079). The table informs the choice; it never changes the primary analysis. A structure that fails
or does not converge is a row that says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pnitrial.analyses.estimands import AnalysisOptions
from pnitrial.analyses.mixed import enough_per_arm
from pnitrial.data.trial import Trial
from pnitrial.failures import failure_status, log
from pnitrial.models.covariance import n_theta
from pnitrial.models.design import build_clda_model, build_trial_model, repeated_data
from pnitrial.models.mmrm import fit_mmrm

COLUMNS = [
    "outcome",
    "family",
    "estimand",
    "structure",
    "criterion",
    "n_theta",
    "n_participants",
    "n_obs",
    "loglik",
    "aic",
    "bic",
    "delta_aic",
    "delta_bic",
    "best_aic",
    "best_bic",
    "status",
]
MODELS = {"lmm": build_trial_model, "clda": build_clda_model}


def _fit_row(data, structure: str, reml: bool) -> dict:
    row = {"structure": structure, "n_theta": n_theta(structure, data.n_visits)}
    try:
        fit = fit_mmrm(data, structure, reml=reml)
    except (ValueError, np.linalg.LinAlgError) as exc:
        return dict(row, status=failure_status(exc))
    if not (fit.converged and fit.positive_definite):
        return dict(row, status="not converged" if not fit.converged else "not positive definite")
    return dict(row, loglik=fit.loglik, aic=fit.aic, bic=fit.bic, status="ok")


def compare_covariances(frame: pd.DataFrame, meta: Trial, structures: list[str], opts: AnalysisOptions) -> pd.DataFrame:
    """logLik, AIC and BIC of each covariance structure for every outcome's lmm and cLDA models.

    Parameters
    ----------
    frame : DataFrame
        The validated long frame.
    meta : Trial
        The trial (arms, visits, covariates, outcomes).
    structures : list of str
        MMRM structures (models.covariance.STRUCTURES) to fit.
    opts : AnalysisOptions
        `reml` chooses the criterion; the other options do not enter.

    Returns
    -------
    DataFrame
        One row per outcome, model and structure (COLUMNS); `delta_aic` and `delta_bic` are the
        distances from the smallest criterion among the structures that converged.

    Examples
    --------
    >>> from pnitrial.data.examples import toy_trial
    >>> frame, trial = toy_trial(n=40, visits=("pre", "mid", "post"), sd=(1.0, 1.5, 2.0))
    >>> table = compare_covariances(frame, trial, ["us", "cs"], AnalysisOptions())
    >>> table[["estimand", "structure", "n_theta", "status"]].values.tolist()[:2]
    [['lmm', 'us', 6, 'ok'], ['lmm', 'cs', 2, 'ok']]
    """
    rows = []
    for o in meta.outcomes:
        for estimand, build in MODELS.items():
            head = {
                "outcome": o.key,
                "family": o.family,
                "estimand": estimand,
                "criterion": "REML" if opts.reml else "ML",
            }
            try:
                model = build(frame, meta, o)
                enough_per_arm(model.n_by_role, f"the {estimand} model")
                data = repeated_data(model)
            except (ValueError, np.linalg.LinAlgError) as exc:
                log.warning("%s %s: %s", o.key, estimand, failure_status(exc))
                rows += [dict(head, structure=s, status=failure_status(exc)) for s in structures]
                continue
            counts = {"n_participants": data.m, "n_obs": data.n}
            rows += [dict(head, **counts, **_fit_row(data, s, opts.reml)) for s in structures]
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    for crit in ("aic", "bic"):
        value = pd.to_numeric(table[crit])
        best = value.groupby([table["outcome"], table["estimand"]]).transform("min")
        table[f"delta_{crit}"] = value - best
        table[f"best_{crit}"] = value.eq(best) & value.notna()
    return table
