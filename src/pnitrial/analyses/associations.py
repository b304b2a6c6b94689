"""Biomarker-symptom associations: repeated-measures and change-change correlations, FDR over the matrix.

Values are on the model scale (log for log-transformed outcomes). The repeated-measures correlation
pools the within-participant association of the trial participants (both arms) across visits; the
change-change correlations use the change from the first to the last visit within the intervention arm.
"""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pandas as pd
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
    """Fisher z interval for a correlation, SE 1/sqrt(n - 3) (Fisher 1921, Metron 1:3).

    Parameters
    ----------
    r : float
        The correlation.
    n_effective : float
        Effective sample size (n, or df + 2 for a repeated-measures correlation).
    alpha : float
        1 - confidence level.

    Returns
    -------
    (float, float)
        The interval; NaN for |r| = 1, a non-finite r or n_effective <= 3.

    Examples
    --------
    >>> [round(v, 6) for v in fisher_ci(0.5, 20, 0.05)]
    [0.073811, 0.771761]
    >>> fisher_ci(1.0, 20, 0.05)
    (nan, nan)
    """
    if not (np.isfinite(r) and n_effective > 3 and abs(r) < 1):
        return float("nan"), float("nan")
    z, h = math.atanh(r), float(stats.norm.ppf(1 - alpha / 2)) / math.sqrt(n_effective - 3)
    return math.tanh(z - h), math.tanh(z + h)


def repeated_measures_correlation(data: pd.DataFrame, alpha: float = 0.05) -> dict:
    """rmcorr with columns pid, x, y (Bakdash & Marusich 2017, Front Psychol 8:456).

    The ANCOVA y ~ participant + x of rmcorr (and pingouin's ``rm_corr``) solved by centring x
    and y within participant: r = sum(x'y') / sqrt(sum(x'^2) sum(y'^2)) with N - k - 1 df and the
    t-test of the common slope. Memory and time are linear in the rows (the participant dummies of
    the ANCOVA would take N x k). The CI uses the effective sample size df + 2, as rmcorr >= 0.5.4
    does (pingouin's interval uses df, which its authors' erratum corrected).

    Parameters
    ----------
    data : DataFrame
        Columns pid, x and y, several rows per participant.
    alpha : float
        1 - confidence level.

    Returns
    -------
    dict
        r, ci_low, ci_high, df (N - k - 1 for N rows of k participants) and p.

    Examples
    --------
    >>> data = pd.DataFrame({"pid": np.repeat(np.arange(6), 2),
    ...     "x": [1.0, 2.0, 3.0, 3.5, 2.0, 2.9, 5.0, 6.2, 4.0, 4.4, 1.5, 2.1],
    ...     "y": [2.0, 3.1, 4.2, 4.0, 1.0, 2.2, 6.0, 7.5, 3.0, 3.2, 2.0, 2.8]})
    >>> res = repeated_measures_correlation(data)
    >>> round(res["r"], 4), res["df"], round(res["p"], 6), round(res["ci_low"], 4), round(res["ci_high"], 4)
    (0.9341, 5, 0.002065, 0.6105, 0.9904)
    """
    group = data.groupby("pid", sort=False)
    xc = (data["x"] - group["x"].transform("mean")).to_numpy(dtype=float)
    yc = (data["y"] - group["y"].transform("mean")).to_numpy(dtype=float)
    df = len(data) - group.ngroups - 1
    sxx, syy, sxy = float(xc @ xc), float(yc @ yc), float(xc @ yc)
    r = sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else float("nan")
    if df <= 0 or not math.isfinite(r):
        p = float("nan")
    elif abs(r) < 1:
        p = float(2 * stats.t.sf(abs(r) * math.sqrt(df / (1 - r * r)), df))
    else:
        p = 0.0
    lo, hi = fisher_ci(r, df + 2, alpha)
    return {"r": r, "ci_low": lo, "ci_high": hi, "df": df, "p": p}


def change_correlation(x: np.ndarray, y: np.ndarray, method: str, alpha: float = 0.05) -> dict:
    """Pearson r or Spearman rho with the t-test of R's cor.test (exact = FALSE for Spearman).

    Parameters
    ----------
    x, y : ndarray
        Paired changes.
    method : {"pearson", "spearman"}
        The correlation.
    alpha : float
        1 - confidence level (Fisher interval, Pearson only).

    Returns
    -------
    dict
        r, ci_low, ci_high (NaN for Spearman), df (n - 2) and p.

    Examples
    --------
    >>> x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]); y = np.array([1.2, 1.9, 3.5, 3.1, 5.5, 5.0])
    >>> res = change_correlation(x, y, "pearson")
    >>> round(res["r"], 4), res["df"], round(res["p"], 6), round(res["ci_low"], 4)
    (0.934, 4, 0.006381, 0.5062)
    >>> res = change_correlation(x, y, "spearman")
    >>> round(res["r"], 4), round(res["p"], 6), res["ci_low"]
    (0.8857, 0.018845, nan)
    """
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
    """Every (x_family, y_family) outcome pair under each analysis; p adjusted over each analysis' matrix.

    Parameters
    ----------
    frame : DataFrame
        The long frame.
    meta : Trial
        The trial.
    x_family, y_family : str
        Outcome families of the rows (biomarkers) and columns (clinical outcomes) of the matrix.
    method : str
        Multiplicity method (inference.multiplicity.adjust), applied within each analysis.
    alpha : float
        1 - confidence level.
    min_n : int
        Fewest participants analysed; a pair with fewer is a row with its status.

    Returns
    -------
    DataFrame
        One row per pair and analysis (`ANALYSES`), columns `COLUMNS`.

    Examples
    --------
    >>> from pnitrial.data.codebook import Outcome
    >>> from pnitrial.data.trial import Trial
    >>> il6 = Outcome("il6", "il6", "IL-6", "pg/mL", "biomarker", "log")
    >>> pain = Outcome("pain", "pain", "Pain", "points", "clinical", "none")
    >>> meta = Trial("demo", {"intervention": "MBPM", "control": "WL", "healthy": None}, ("pre", "post"),
    ...              outcomes=(il6, pain))
    >>> rng = np.random.default_rng(5)
    >>> n = 12; arm = np.arange(n) < 6
    >>> m0, y0 = rng.normal(1.0, 0.5, n), rng.normal(6.0, 1.0, n)
    >>> m1 = m0 - 0.6 * arm + rng.normal(0, 0.3, n)
    >>> y1 = y0 + 1.5 * (m1 - m0) + rng.normal(0, 0.5, n)
    >>> values = {("il6", 0): np.exp(m0), ("il6", 1): np.exp(m1), ("pain", 0): y0, ("pain", 1): y1}
    >>> frame = pd.concat([pd.DataFrame({"pid": np.arange(1, n + 1), "role": np.where(arm, "intervention", "control"),
    ...     "visit": ("pre", "post")[v], "visit_index": v, "outcome": k, "value": val})
    ...     for (k, v), val in values.items()], ignore_index=True)
    >>> table = associations(frame, meta, "biomarker", "clinical", "bh")
    >>> table["analysis"].tolist(), table["r"].round(4).tolist(), table["n_participants"].tolist()
    (['rm_corr', 'change_pearson', 'change_spearman'], [0.8448, 0.0831, 0.2571], [12, 6, 6])
    """
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
