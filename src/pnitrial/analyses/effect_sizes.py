"""Effect sizes in one table: the standardised intervention effect and Hedges g for patients vs healthy."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pnitrial.data.codebook import TRIAL_ROLES, Outcome
from pnitrial.data.trial import Trial

COLUMNS = [
    "outcome",
    "family",
    "comparison",
    "effect_size",
    "estimand",
    "visit",
    "value",
    "ci_low",
    "ci_high",
    "estimate",
    "denominator_sd",
    "n_1",
    "n_2",
    "scale",
]


def model_scale(values: pd.Series, outcome: Outcome) -> np.ndarray:
    """Values on the scale the models use (log for log-transformed outcomes).

    Parameters
    ----------
    values : Series
        Raw values.
    outcome : Outcome
        The outcome (its transform).

    Returns
    -------
    ndarray

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> il6 = Outcome("il6", "il6", "IL-6", "pg/mL", "biomarker", "log")
    >>> model_scale(pd.Series([1.0, np.e]), il6).round(6).tolist()
    [0.0, 1.0]
    """
    v = values.to_numpy(dtype=float)
    return outcome.model_scale(v)


def pooled_sd(groups: list[np.ndarray]) -> float:
    """Within-group SD pooled over groups, weights n - 1 (the denominator of Cohen's d).

    Cohen 1988 (Statistical Power Analysis for the Behavioral Sciences, 2nd ed.).

    Parameters
    ----------
    groups : list of ndarray
        The samples.

    Returns
    -------
    float
        sqrt(sum of within-group squares / sum(n - 1)); NaN without residual df.

    Examples
    --------
    >>> round(pooled_sd([np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0])]), 6)
    1.154701
    """
    ss = sum(float(((g - g.mean()) ** 2).sum()) for g in groups)
    df = sum(len(g) - 1 for g in groups)
    return float(np.sqrt(ss / df)) if df > 0 else float("nan")


def baseline_sds(frame: pd.DataFrame, meta: Trial) -> pd.DataFrame:
    """Per outcome: pooled baseline SD of the two trial arms, with the arm sizes.

    Parameters
    ----------
    frame : DataFrame
        The long frame.
    meta : Trial
        The trial.

    Returns
    -------
    DataFrame
        Columns outcome, sd (model scale), n_1 (intervention) and n_2 (control).

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
    >>> sds = baseline_sds(frame, meta)
    >>> round(float(sds.loc[0, "sd"]), 6), int(sds.loc[0, "n_1"]), int(sds.loc[0, "n_2"])
    (0.790569, 3, 3)
    """
    base = frame[(frame["visit"] == meta.visits[0]) & frame["role"].isin(TRIAL_ROLES)]
    rows = []
    for o in meta.outcomes:
        sub = base[base["outcome"] == o.key]
        y = model_scale(sub["value"], o)
        arms = [y[(sub["role"] == r).to_numpy()] for r in TRIAL_ROLES]
        rows.append({"outcome": o.key, "sd": pooled_sd(arms), "n_1": len(arms[0]), "n_2": len(arms[1])})
    return pd.DataFrame(rows, columns=["outcome", "sd", "n_1", "n_2"])


def standardised_difference(estimate: float, ci: tuple[float, float], sd: float) -> tuple[float, float, float]:
    """Model-based effect over the pooled baseline SD, CI scaled alike (Feingold 2009, Psychol Methods 14:43).

    Parameters
    ----------
    estimate : float
        The intervention effect on the model scale.
    ci : (float, float)
        Its confidence interval.
    sd : float
        The pooled baseline SD.

    Returns
    -------
    tuple of float
        Standardised estimate and interval.

    Examples
    --------
    >>> [round(v, 6) for v in standardised_difference(-2.0, (-2.6, -1.4), 0.8)]
    [-2.5, -3.25, -1.75]
    """
    return estimate / sd, ci[0] / sd, ci[1] / sd


def effect_sizes(
    effects: pd.DataFrame, baseline: pd.DataFrame | None, frame: pd.DataFrame, meta: Trial
) -> pd.DataFrame:
    """Standardised intervention effects of the primary estimand, then Hedges g vs healthy controls.

    Parameters
    ----------
    effects : DataFrame
        The effects table (analyses.estimands); its primary, model-scale interaction rows are used.
    baseline : DataFrame or None
        `baseline_vs_healthy`'s table, whose Hedges g rows are appended.
    frame : DataFrame
        The long frame (for the baseline SDs).
    meta : Trial
        The trial.

    Returns
    -------
    DataFrame
        One row per effect size, columns `COLUMNS`.

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
    >>> effects = pd.DataFrame({"outcome": ["pain"], "primary": [True], "scale": ["model"],
    ...     "contrast": ["interaction:post"], "estimand": ["clda"], "visit": ["post"],
    ...     "estimate": [-2.0], "ci_low": [-2.6], "ci_high": [-1.4]})
    >>> row = effect_sizes(effects, None, frame, meta).iloc[0]
    >>> row["comparison"], [round(float(row[c]), 4) for c in ("value", "ci_low", "ci_high")]
    ('MBPM vs WL, change to post', [-2.5298, -3.2888, -1.7709])
    """
    sds = baseline_sds(frame, meta).set_index("outcome")
    families = {o.key: o.family for o in meta.outcomes}
    scales = {o.key: o.scale_name for o in meta.outcomes}
    prim = effects[
        effects["primary"].astype(bool)
        & (effects["scale"] == "model")
        & effects["contrast"].str.startswith("interaction:")
    ]
    rows = []
    for r in prim.itertuples(index=False):
        s = sds.loc[r.outcome]
        d, lo, hi = standardised_difference(r.estimate, (r.ci_low, r.ci_high), s["sd"])
        rows.append(
            {
                "outcome": r.outcome,
                "family": families[r.outcome],
                "comparison": f"{meta.arms['intervention']} vs {meta.arms['control']}, change to {r.visit}",
                "effect_size": "standardised difference",
                "estimand": r.estimand,
                "visit": r.visit,
                "value": d,
                "ci_low": lo,
                "ci_high": hi,
                "estimate": r.estimate,
                "denominator_sd": s["sd"],
                "n_1": int(s["n_1"]),
                "n_2": int(s["n_2"]),
                "scale": scales[r.outcome],
            }
        )
    for r in (baseline if baseline is not None else pd.DataFrame()).itertuples(index=False):
        rows.append(
            {
                "outcome": r.outcome,
                "family": r.family,
                "comparison": f"patients vs {meta.arms.get('healthy')}, {meta.visits[0]}",
                "effect_size": "Hedges g",
                "estimand": "",
                "visit": meta.visits[0],
                "value": r.hedges_g,
                "ci_low": r.g_ci_low,
                "ci_high": r.g_ci_high,
                "estimate": r.difference,
                "denominator_sd": np.nan,
                "n_1": r.n_patients,
                "n_2": r.n_healthy,
                "scale": r.scale,
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)
