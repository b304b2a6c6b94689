"""Biomarker-symptom associations: repeated-measures and change-change correlations, FDR over the matrix.

Values are on the model scale (log for log-transformed outcomes). The repeated-measures correlation
pools the within-participant association of the trial participants (both arms) across visits; the
change-change correlations use the change from the first to the last visit within the intervention arm.
"""

from __future__ import annotations

import math
import warnings
from itertools import product

import numpy as np
import pandas as pd
import pingouin as pg
from scipy import stats

from pnitrial.data.codebook import TRIAL_ROLES
from pnitrial.data.trial import Trial
from pnitrial.failures import attempt
from pnitrial.inference.multiplicity import adjust

COLUMNS = [
    "analysis",
    "biomarker",
    "clinical",
    "r",
    "ci_low",
    "ci_high",
    "df",
    "n_participants",
    "n_observations",
    "p",
    "p_fdr",
    "p_adjust_method",
    "status",
]
ANALYSES = ("rm_corr", "change_pearson", "change_spearman")


def fisher_ci(r: float, n_effective: float, alpha: float) -> tuple[float, float]:
    """Fisher z interval for a correlation, SE 1/sqrt(n - 3) (Fisher 1921, Metron 1:3)."""
    if not (np.isfinite(r) and n_effective > 3 and abs(r) < 1):
        return float("nan"), float("nan")
    z, h = math.atanh(r), float(stats.norm.ppf(1 - alpha / 2)) / math.sqrt(n_effective - 3)
    return math.tanh(z - h), math.tanh(z + h)


def repeated_measures_correlation(data: pd.DataFrame, alpha: float = 0.05) -> dict:
    """rmcorr with columns pid, x, y (Bakdash & Marusich 2017, Front Psychol 8:456).

    r, df and p are pingouin's; the CI uses the effective sample size df + 2, as rmcorr >= 0.5.4
    does (pingouin's interval uses df, which its authors' erratum corrected).
    """
    with warnings.catch_warnings():  # pingouin's own use of a deprecated pandas keyword
        warnings.filterwarnings("ignore", message=".*inplace keyword.*")
        res = pg.rm_corr(data=data, x="x", y="y", subject="pid")
    r, df = float(res["r"].iloc[0]), int(res["dof"].iloc[0])
    lo, hi = fisher_ci(r, df + 2, alpha)
    return {"r": r, "ci_low": lo, "ci_high": hi, "df": df, "p": float(res["pval"].iloc[0])}


def change_correlation(x: np.ndarray, y: np.ndarray, method: str, alpha: float = 0.05) -> dict:
    """Pearson r or Spearman rho with the t-test of R's cor.test (exact = FALSE for Spearman)."""
    n = len(x)
    r = float(stats.pearsonr(x, y)[0] if method == "pearson" else stats.spearmanr(x, y)[0])
    df = n - 2
    if abs(r) < 1:
        t = r * math.sqrt(df / (1 - r * r))
        p = float(2 * stats.t.sf(abs(t), df))
    else:
        p = 0.0
    lo, hi = fisher_ci(r, n, alpha) if method == "pearson" else (float("nan"), float("nan"))
    return {"r": r, "ci_low": lo, "ci_high": hi, "df": df, "p": p}


def _wide(frame: pd.DataFrame, outcomes: list[dict]) -> pd.DataFrame:
    """Trial participants x visit, one column per outcome on the model scale."""
    sub = frame[frame["role"].isin(TRIAL_ROLES) & frame["outcome"].isin([o.key for o in outcomes])].copy()
    logged = sub["outcome"].isin([o.key for o in outcomes if o.is_log]).to_numpy()
    y = sub["value"].to_numpy(dtype=float)
    sub["y"] = np.where(logged, np.log(np.where(logged, y, 1.0)), y)
    return sub.pivot_table(index=["pid", "role", "visit_index"], columns="outcome", values="y", sort=True)


METHODS = ("pearson", "spearman")


def associations(
    frame: pd.DataFrame, meta: Trial, x_family: str, y_family: str, method: str, alpha: float = 0.05, min_n: int = 5
) -> pd.DataFrame:
    """Every (x_family, y_family) outcome pair under each analysis; p adjusted over each analysis' matrix."""
    xs = [o for o in meta.outcomes if o.family == x_family]
    ys = [o for o in meta.outcomes if o.family == y_family]
    if not xs or not ys:
        return pd.DataFrame(columns=COLUMNS)
    wide = _wide(frame, xs + ys)
    first, last = 0, len(meta.visits) - 1
    rows = []
    for xo, yo in product(xs, ys):
        if xo.key == yo.key:
            continue
        pair = wide[[xo.key, yo.key]].dropna().reset_index()
        pair.columns = ["pid", "role", "visit_index", "x", "y"]
        pair_rows = [(_rm_row, (pair, xo.key, yo.key, alpha, min_n), "rm_corr")]
        ch = _changes(pair, first, last)
        pair_rows += [(_change_row, (ch, m, xo.key, yo.key, alpha, min_n), f"change_{m}") for m in METHODS]
        for fn, args, analysis in pair_rows:
            got, failed = attempt(f"association {analysis} {xo.key} x {yo.key}", fn, *args)
            rows.append(got or {"analysis": analysis, "biomarker": xo.key, "clinical": yo.key, "status": failed})
    out = pd.DataFrame(rows, columns=COLUMNS)
    out["p_adjust_method"] = out["p_adjust_method"].astype(object)
    for a in ANALYSES:
        idx = out.index[out["analysis"] == a]
        out.loc[idx, "p_fdr"] = adjust(out.loc[idx, "p"].to_numpy(dtype=float), method)
        out.loc[idx, "p_adjust_method"] = method
    return out


def _rm_row(pair: pd.DataFrame, x: str, y: str, alpha: float, min_n: int) -> dict:
    counts = pair["pid"].value_counts()
    used = pair[pair["pid"].isin(counts.index[counts >= 2])]
    row = {"analysis": "rm_corr", "biomarker": x, "clinical": y}
    row.update(n_participants=int(used["pid"].nunique()), n_observations=len(used))
    if row["n_participants"] < min_n or used["x"].nunique() < 2 or used["y"].nunique() < 2:
        return {**row, "status": f"too few participants with repeated values (< {min_n})"}
    return {**row, **repeated_measures_correlation(used[["pid", "x", "y"]], alpha), "status": "ok"}


def _changes(pair: pd.DataFrame, first: int, last: int) -> pd.DataFrame:
    arm = pair[pair["role"] == "intervention"]
    a = arm[arm["visit_index"] == first].set_index("pid")[["x", "y"]]
    b = arm[arm["visit_index"] == last].set_index("pid")[["x", "y"]]
    return (b - a).dropna()


def _change_row(ch: pd.DataFrame, method: str, x: str, y: str, alpha: float, min_n: int) -> dict:
    row = {"analysis": f"change_{method}", "biomarker": x, "clinical": y}
    row.update(n_participants=len(ch), n_observations=2 * len(ch))
    if len(ch) < min_n or ch["x"].nunique() < 2 or ch["y"].nunique() < 2:
        return {**row, "status": f"too few intervention participants with both changes (< {min_n})"}
    res = change_correlation(ch["x"].to_numpy(), ch["y"].to_numpy(), method, alpha)
    return {**row, **res, "status": "ok"}
