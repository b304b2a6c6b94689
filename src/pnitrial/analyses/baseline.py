"""Patients versus healthy controls at baseline: Welch t and Hedges g per outcome."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pingouin as pg
from scipy import stats

from pnitrial.data.codebook import TRIAL_ROLES
from pnitrial.data.trial import Trial


def welch_test(x: np.ndarray, y: np.ndarray, alpha: float = 0.05) -> dict:
    """Difference of means x - y with Welch's t (Welch 1947, Biometrika 34:28), as R's t.test.

    Parameters
    ----------
    x, y : ndarray
        The two samples (patients, healthy controls).
    alpha : float
        1 - confidence level.

    Returns
    -------
    dict
        difference, ci_low, ci_high, t, df (Welch-Satterthwaite) and p.

    Examples
    --------
    >>> x = np.array([6.0, 5.0, 7.0, 6.0, 5.5, 6.5]); y = np.array([3.0, 2.5, 4.0, 3.5])
    >>> res = welch_test(x, y)
    >>> res["difference"], round(res["t"], 4), round(res["df"], 4), round(res["p"], 6)
    (2.75, 6.3509, 7.0231, 0.00038)
    """
    res = stats.ttest_ind(x, y, equal_var=False)
    ci = res.confidence_interval(1 - alpha)
    return {
        "difference": float(np.mean(x) - np.mean(y)),
        "ci_low": float(ci.low),
        "ci_high": float(ci.high),
        "t": float(res.statistic),
        "df": float(res.df),
        "p": float(res.pvalue),
    }


def hedges_g(x: np.ndarray, y: np.ndarray, alpha: float = 0.05) -> tuple[float, float, float]:
    """Bias-corrected standardised difference (Hedges 1981, J Educ Stat 6:107) with normal-theory CI.

    Parameters
    ----------
    x, y : ndarray
        The two samples.
    alpha : float
        1 - confidence level.

    Returns
    -------
    (float, float, float)
        g and its interval, SE sqrt((n1 + n2) / (n1 n2) + g^2 / (2 (n1 + n2))).

    Examples
    --------
    >>> x = np.array([6.0, 5.0, 7.0, 6.0, 5.5, 6.5]); y = np.array([3.0, 2.5, 4.0, 3.5])
    >>> [round(v, 4) for v in hedges_g(x, y)]
    [3.6279, 1.596, 5.6598]
    """
    g = float(pg.compute_effsize(x, y, paired=False, eftype="hedges"))
    n1, n2 = len(x), len(y)
    se = math.sqrt((n1 + n2) / (n1 * n2) + g**2 / (2 * (n1 + n2)))
    z = float(stats.norm.ppf(1 - alpha / 2))
    return g, g - z * se, g + z * se


def baseline_vs_healthy(frame: pd.DataFrame, meta: Trial, alpha: float = 0.05) -> pd.DataFrame:
    """One row per outcome, on the model scale (log for log-transformed outcomes).

    Patients (both trial arms) against healthy controls at the first visit: Welch's t and Hedges g,
    and for log-transformed outcomes the ratio of geometric means with its interval.

    Parameters
    ----------
    frame : DataFrame
        The long frame.
    meta : Trial
        The trial; without a healthy arm the table is empty.
    alpha : float
        1 - confidence level.

    Returns
    -------
    DataFrame
        One row per outcome; the statistics are missing where a group has fewer than 2 values.

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> from pnitrial.data.trial import Trial
    >>> il6 = Outcome("il6", "il6", "IL-6", "pg/mL", "biomarker", "log")
    >>> meta = Trial("demo", {"intervention": "MBPM", "control": "WL", "healthy": "HC"}, ("pre", "post"),
    ...              outcomes=(il6,))
    >>> frame = pd.DataFrame({"pid": np.arange(1, 10), "role": np.repeat(["intervention", "control", "healthy"], 3),
    ...     "visit": "pre", "visit_index": 0, "outcome": "il6", "value": [4.1, 5.5, 3.2, 6.0, 4.8, 3.9, 2.0, 2.6, 1.7]})
    >>> row = baseline_vs_healthy(frame, meta).iloc[0]
    >>> int(row["n_patients"]), int(row["n_healthy"]), [round(float(row[c]), 4) for c in ("ratio", "hedges_g", "p")]
    (6, 3, [2.1676, 3.0139, 0.0059])
    """
    cols = [
        "outcome",
        "family",
        "scale",
        "n_patients",
        "n_healthy",
        "mean_patients",
        "mean_healthy",
        "difference",
        "ci_low",
        "ci_high",
        "t",
        "df",
        "p",
        "hedges_g",
        "g_ci_low",
        "g_ci_high",
        "ratio",
        "ratio_ci_low",
        "ratio_ci_high",
    ]
    if not meta.arms.get("healthy"):
        return pd.DataFrame(columns=cols)
    base = frame[frame["visit"] == meta.visits[0]]
    rows = []
    for o in meta.outcomes:
        sub = base[base["outcome"] == o.key]
        v = o.model_scale(sub["value"])
        x = v[sub["role"].isin(TRIAL_ROLES)].to_numpy(dtype=float)
        y = v[sub["role"] == "healthy"].to_numpy(dtype=float)
        row = {
            "outcome": o.key,
            "family": o.family,
            "scale": o.scale_name,
            "n_patients": len(x),
            "n_healthy": len(y),
        }
        if len(x) >= 2 and len(y) >= 2:
            w = welch_test(x, y, alpha)
            g, glo, ghi = hedges_g(x, y, alpha)
            row.update(
                mean_patients=float(x.mean()),
                mean_healthy=float(y.mean()),
                **w,
                hedges_g=g,
                g_ci_low=glo,
                g_ci_high=ghi,
            )
            if o.is_log:
                row.update(
                    ratio=math.exp(w["difference"]),
                    ratio_ci_low=math.exp(w["ci_low"]),
                    ratio_ci_high=math.exp(w["ci_high"]),
                )
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)
