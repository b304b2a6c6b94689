"""The rows every analysis writes: effect rows and fit rows, their columns declared once.

One builder serves a single outcome (K = 1, returned as records for its JSON result) and a batch
of outcomes (a panel's analytes, columns of arrays). Its rules hold for both: an estimate or SE that
is not finite is "not estimable", a p without a valid denominator df is "not estimable", only a fit
whose status is ok or singular carries a test (statistic, p, interval), and a log-scale outcome adds
ratio rows (exp of the estimate and its interval).
"""

from __future__ import annotations

import numpy as np

from pnitrial.failures import OK, fit_status

__all__ = [
    "EFFECT_COLUMNS",
    "FIT_COLUMNS",
    "NOT_FINITE",
    "NO_DF",
    "effect_columns",
    "fit_header",
    "mixed_fit_values",
    "mmrm_fit_values",
    "records",
]

# The effects and fits tables, in the order they are written.
EFFECT_COLUMNS = [
    "outcome",
    "family",
    "estimand",
    "primary",
    "contrast",
    "visit",
    "scale",
    "estimate",
    "se",
    "df",
    "statistic",
    "statistic_type",
    "p",
    "p_fdr",
    "p_adjust_method",
    "ci_low",
    "ci_high",
    "ddf_method",
    "covariance",
    "fit_status",
]
FIT_COLUMNS = [
    "outcome",
    "family",
    "estimand",
    "visit",
    "transform",
    "model",
    "covariance",
    "status",
    "n_participants",
    "n_intervention",
    "n_control",
    "n_obs",
    "var_participant",
    "var_residual",
    "var_slope",
    "cov_intercept_slope",
    "reml_criterion",
    "ml_deviance",
    "loglik",
    "aic",
    "bic",
    "n_censored",
    "converged",
    "singular",
    "positive_definite",
    "ddf_method",
    "warnings",
    "error",
]
NOT_FINITE = "not estimable: the estimate or its SE is not finite"
NO_DF = "not estimable: no valid denominator df"
_NUMBERS = ("estimate", "se", "df", "statistic", "p", "ci_low", "ci_high")
_TESTED = ("statistic", "p", "ci_low", "ci_high")
_VALUES = ("estimate", "se", "df", "statistic", "statistic_type", "p", "ci_low", "ci_high")


def _exp(x: np.ndarray) -> np.ndarray:
    """exp on the ratio scale; NaN where the model-scale value is missing or beyond a double."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(np.isfinite(x) & (x < 700), np.exp(np.where(x < 700, x, 0.0)), np.nan)


def effect_columns(
    outcome,
    family: str,
    log_scale: bool,
    estimand: str,
    contrast: str,
    visit: str,
    primary: bool,
    method: str,
    status,
    e,
    covariance: str = "",
) -> list[dict]:
    """The effect rows of one contrast for K outcomes: model scale, then ratio scale for log outcomes.

    Parameters
    ----------
    outcome : str or array of str
        The outcome key(s); K = its length.
    family, estimand, contrast, visit, method : str
        Shared by the K rows.
    log_scale : bool
        Whether the outcome is modelled on the log scale (adds ratio rows).
    primary : bool
        Whether this estimand is the primary one (the row is primary for intervention effects).
    status : str or array of str
        The fit status of each outcome's model.
    e : Estimate, BatchEstimates or None
        The estimate with SE, df, statistic, p and interval (floats or arrays); None for a failed fit.
    covariance : str
        The model's covariance ("random-intercept", an MMRM structure, "" for least squares).

    Returns
    -------
    list of dict
        One dict of columns (arrays of length K) per scale, keys in EFFECT_COLUMNS order.

    Examples
    --------
    >>> from pnitrial.inference.contrasts import Estimate
    >>> e = Estimate(1.0, 0.5, 20.0, 2.0, "t", 0.059, 0.0, 2.0)
    >>> cols = effect_columns("il6", "biomarker", True, "clda", "interaction:post", "post", True, "kr", "ok", e)
    >>> [c["scale"] for c in cols], round(float(cols[1]["estimate"][0]), 4)
    (['model', 'ratio'], 2.7183)
    """
    keys = np.atleast_1d(np.asarray(outcome, dtype=object))
    K = len(keys)
    status = np.broadcast_to(np.asarray(status, dtype=object), (K,)).copy()
    live = status != "failed"
    if e is None:
        vals = {c: np.full(K, np.nan) for c in _NUMBERS}
        stype = np.full(K, None, dtype=object)
        live &= False
    else:
        vals = {c: np.broadcast_to(np.asarray(getattr(e, c), dtype=float), (K,)).copy() for c in _NUMBERS}
        finite = np.isfinite(vals["estimate"]) & np.isfinite(vals["se"]) & (vals["se"] > 0)
        status[live & ~finite] = NOT_FINITE
        no_df = live & finite & np.isin(status, OK) & ~np.isfinite(vals["p"])
        status[no_df] = NO_DF
        for c in ("estimate", "se", "df"):
            vals[c] = np.where(live & finite, vals[c], np.nan)
        stype = np.where(live, e.statistic_type, None).astype(object)
    tested = np.isin(status, OK)
    for c in _TESTED:
        vals[c] = np.where(tested, vals[c], np.nan)
    vals["df"] = np.where(np.isfinite(vals["df"]), vals["df"], np.nan)
    vals["statistic_type"] = stype
    base = {
        "outcome": keys,
        "family": family,
        "estimand": estimand,
        "contrast": contrast,
        "visit": visit,
        "primary": bool(primary and contrast.startswith("interaction:")),
        "ddf_method": method,
        "covariance": covariance,
        "fit_status": status,
    }
    out = [{**base, "scale": "model", **{c: vals[c] for c in _VALUES}}]
    if log_scale:
        ratio = {c: vals[c] for c in _VALUES}
        ratio.update(estimate=_exp(vals["estimate"]), se=np.full(K, np.nan))
        ratio.update(ci_low=_exp(vals["ci_low"]), ci_high=_exp(vals["ci_high"]))
        out.append({**base, "scale": "ratio", **ratio})
    return out


def records(columns: list[dict]) -> list[dict]:
    """Rows as plain Python records (NaN as None) from column dicts, for a JSON result.

    Examples
    --------
    >>> records([{"outcome": ["a"], "p": [float("nan")], "primary": True}])
    [{'outcome': 'a', 'p': None, 'primary': True}]
    """
    out = []
    for cols in columns:  # plain indexing: a DataFrame per row cost milliseconds per MMRM outcome
        vals = {k: v if np.isscalar(v) else np.atleast_1d(v) for k, v in cols.items()}
        lengths = {len(v) for v in vals.values() if not np.isscalar(v)}
        if len(lengths) > 1:
            raise ValueError(f"columns of unequal lengths {sorted(lengths)}")
        for i in range(lengths.pop() if lengths else 1):
            out.append({k: _native(v if np.isscalar(v) else v[i]) for k, v in vals.items()})
    return out


def _native(v):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def fit_header(outcome, family: str, transform: str, estimand: str, model: str, ddf: str, visit: str = "") -> dict:
    """The identifying columns of a fit row (outcome may be an array of analytes).

    Examples
    --------
    >>> fit_header("il6", "biomarker", "log", "clda", "visit + arm:visit", "kenward-roger")["estimand"]
    'clda'
    """
    return {
        "outcome": outcome,
        "family": family,
        "transform": transform,
        "estimand": estimand,
        "visit": visit,
        "model": model,
        "ddf_method": ddf,
    }


def mixed_fit_values(fit, n_by_role: dict, warnings, error="") -> dict:
    """The fit columns of a random-intercept mixed model: a single fit (LMMFit) or a batch (BatchFit).

    A batched outcome that could not be fitted (fit.ok False) is "failed" with its error; the
    status of the others follows the one rule of pnitrial.failures.fit_status.

    Examples
    --------
    >>> import numpy as np
    >>> from pnitrial.models.batch import fit_batch
    >>> X = np.column_stack([np.ones(8), np.tile([0.0, 1.0], 4)])
    >>> y = np.array([1.0, 2.1, 0.9, 2.4, 1.3, 2.0, 1.1, 2.6])
    >>> v = mixed_fit_values(fit_batch(X, np.repeat(np.arange(4), 2), y), {"intervention": 2, "control": 2}, "")
    >>> v["status"][0], int(v["n_obs"][0])
    ('singular', 8)
    """
    ok = np.asarray(getattr(fit, "ok", True))
    with np.errstate(invalid="ignore", divide="ignore"):
        status = fit_status(fit.converged, fit.singular, fit.sigma**2, fit.var_participant)
    gradient = np.asarray(fit.gradient_max, dtype=float)
    return {
        "status": np.where(ok, status, "failed").astype(object) if ok.ndim else (status if ok else "failed"),
        "n_participants": fit.n_participants,
        "n_intervention": n_by_role["intervention"],
        "n_control": n_by_role["control"],
        "n_obs": fit.n_obs,
        "var_participant": fit.var_participant,
        "var_residual": fit.sigma**2,
        "reml_criterion": fit.criterion,
        "converged": fit.converged,
        "singular": np.where(ok, fit.singular, None) if ok.ndim else fit.singular,
        # below 1e-10 the scaled gradient is rounding noise: report it as zero, not as noise digits
        "gradient_max": np.where(gradient < 1e-10, 0.0, gradient) if ok.ndim else float(gradient),
        "warnings": warnings,
        "error": error,
    }


def mmrm_fit_values(fit, n_by_role: dict, warnings: str) -> dict:
    """The fit columns of an MMRM: its covariance structure, logLik, AIC, BIC and convergence checks.

    Examples
    --------
    >>> import numpy as np
    >>> from pnitrial.models.mmrm import RepeatedData, fit_mmrm
    >>> rng = np.random.default_rng(3)
    >>> g = np.repeat(np.arange(30), 2); v = np.tile([0, 1], 30); arm = (g % 2).astype(float)
    >>> X = np.column_stack([np.ones(60), v, arm * v]).astype(float)
    >>> y = X @ [1.0, 0.5, -0.8] + np.repeat(rng.normal(size=30), 2) + rng.normal(size=60)
    >>> fit = fit_mmrm(RepeatedData(X, y, g, v, 2, ("a", "b", "c")), "cs")
    >>> row = mmrm_fit_values(fit, {"intervention": 15, "control": 15}, "")
    >>> row["covariance"], row["status"], row["positive_definite"]
    ('cs', 'ok', True)
    """
    ok = fit.converged and fit.positive_definite
    status = "ok" if ok else ("not converged" if not fit.converged else "degenerate: covariance not positive definite")
    return {
        "covariance": fit.structure,
        "status": status,
        "n_participants": fit.data.m,
        "n_intervention": n_by_role["intervention"],
        "n_control": n_by_role["control"],
        "n_obs": fit.data.n,
        "reml_criterion": fit.criterion if fit.reml else None,
        "ml_deviance": None if fit.reml else fit.criterion,
        "loglik": fit.loglik,
        "aic": fit.aic,
        "bic": fit.bic,
        "converged": fit.converged,
        "singular": False,
        "positive_definite": fit.positive_definite,
        "gradient_max": fit.gradient_max,
        "warnings": warnings,
        "error": "",
    }
