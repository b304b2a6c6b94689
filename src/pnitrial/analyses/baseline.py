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
    """Difference of means x - y with Welch's t (Welch 1947, Biometrika 34:28), as R's t.test."""
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
    """Bias-corrected standardised difference (Hedges 1981, J Educ Stat 6:107) with normal-theory CI."""
    g = float(pg.compute_effsize(x, y, paired=False, eftype="hedges"))
    n1, n2 = len(x), len(y)
    se = math.sqrt((n1 + n2) / (n1 * n2) + g**2 / (2 * (n1 + n2)))
    z = float(stats.norm.ppf(1 - alpha / 2))
    return g, g - z * se, g + z * se


def baseline_vs_healthy(frame: pd.DataFrame, meta: Trial, alpha: float = 0.05) -> pd.DataFrame:
    """One row per outcome, on the model scale (log for log-transformed outcomes)."""
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
        v = np.log(sub["value"]) if o.is_log else sub["value"]
        x = v[sub["role"].isin(TRIAL_ROLES)].to_numpy(dtype=float)
        y = v[sub["role"] == "healthy"].to_numpy(dtype=float)
        row = {
            "outcome": o.key,
            "family": o.family,
            "scale": "log" if o.is_log else "raw",
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
